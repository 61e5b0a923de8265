#include "core/schemes.hpp"

namespace keyward {

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

bool scheme_fits(KeyType type, const SchemeInfo& scheme, bool with_pss) noexcept {
    if (key_type_is_ec(type)) return ecdsa_scheme_for(static_cast<int>(key_type_bits(type))) == scheme.scheme;
    return scheme.family == SchemeFamily::rsa_pkcs1 || (with_pss && scheme.family == SchemeFamily::rsa_pss);
}

std::vector<Scheme> schemes_for(KeyType type, bool with_pss) {
    std::vector<Scheme> out;
    for (const auto& s : all_schemes())
        if (scheme_fits(type, s, with_pss)) out.push_back(s.scheme);
    return out;
}

std::optional<Scheme> rsa_scheme_for(SchemeFamily family, size_t digest_size) noexcept {
    if (family == SchemeFamily::ecdsa) return std::nullopt;
    for (const auto& s : all_schemes())
        if (s.family == family && s.digest_size == digest_size) return s.scheme;
    return std::nullopt;
}

std::optional<Scheme> ecdsa_scheme_for(int curve_bits) noexcept {
    switch (curve_bits) {
        case 256: return Scheme::ecdsa_secp256r1_sha256;
        case 384: return Scheme::ecdsa_secp384r1_sha384;
        default: return std::nullopt;
    }
}

}  // namespace keyward
