#include "ipc/protocol.hpp"

namespace keyward::ipc {

std::optional<Op> op_from_byte(uint8_t b) noexcept {
    if (b >= static_cast<uint8_t>(Op::hello) && b <= static_cast<uint8_t>(Op::rollback))
        return static_cast<Op>(b);
    return std::nullopt;
}

std::string_view op_name(Op op) noexcept {
    switch (op) {
        case Op::hello: return "hello";
        case Op::status: return "status";
        case Op::list_keys: return "list_keys";
        case Op::get_key: return "get_key";
        case Op::sign: return "sign";
        case Op::generate_key: return "generate_key";
        case Op::delete_key: return "delete_key";
        case Op::import_key: return "import_key";
        case Op::list_identities: return "list_identities";
        case Op::get_identity: return "get_identity";
        case Op::renew: return "renew";
        case Op::rollback: return "rollback";
    }
    return "unknown";
}

const std::vector<SchemeInfo>& all_schemes() {
    static const std::vector<SchemeInfo> schemes = {
        {Scheme::ecdsa_secp256r1_sha256, "ecdsa_secp256r1_sha256", SchemeFamily::ecdsa, "SHA256", 32},
        {Scheme::ecdsa_secp384r1_sha384, "ecdsa_secp384r1_sha384", SchemeFamily::ecdsa, "SHA384", 48},
        {Scheme::rsa_pss_rsae_sha256, "rsa_pss_rsae_sha256", SchemeFamily::rsa_pss, "SHA256", 32},
        {Scheme::rsa_pss_rsae_sha384, "rsa_pss_rsae_sha384", SchemeFamily::rsa_pss, "SHA384", 48},
        {Scheme::rsa_pss_rsae_sha512, "rsa_pss_rsae_sha512", SchemeFamily::rsa_pss, "SHA512", 64},
        {Scheme::rsa_pkcs1_sha256, "rsa_pkcs1_sha256", SchemeFamily::rsa_pkcs1, "SHA256", 32},
        {Scheme::rsa_pkcs1_sha384, "rsa_pkcs1_sha384", SchemeFamily::rsa_pkcs1, "SHA384", 48},
        {Scheme::rsa_pkcs1_sha512, "rsa_pkcs1_sha512", SchemeFamily::rsa_pkcs1, "SHA512", 64},
    };
    return schemes;
}

const SchemeInfo* scheme_info(Scheme s) noexcept {
    for (const auto& info : all_schemes())
        if (info.scheme == s) return &info;
    return nullptr;
}

const SchemeInfo* scheme_by_name(std::string_view name) noexcept {
    for (const auto& info : all_schemes())
        if (info.name == name) return &info;
    return nullptr;
}

const SchemeInfo* scheme_from_u16(uint16_t v) noexcept { return scheme_info(static_cast<Scheme>(v)); }

}  // namespace keyward::ipc
