#include "p11module/mechanisms.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace keyward::p11module {

namespace {

constexpr MechanismInfo kMechanisms[] = {
    {CKM_ECDSA, MechanismKind::ecdsa_prehashed, "", 0},
    {CKM_ECDSA_SHA256, MechanismKind::ecdsa_hashing, "SHA256", 32},
    {CKM_ECDSA_SHA384, MechanismKind::ecdsa_hashing, "SHA384", 48},
    {CKM_ECDSA_SHA512, MechanismKind::ecdsa_hashing, "SHA512", 64},
    {CKM_RSA_PKCS, MechanismKind::rsa_digest_info, "", 0},
    {CKM_SHA256_RSA_PKCS, MechanismKind::rsa_pkcs1_hashing, "SHA256", 32},
    {CKM_SHA384_RSA_PKCS, MechanismKind::rsa_pkcs1_hashing, "SHA384", 48},
    {CKM_SHA512_RSA_PKCS, MechanismKind::rsa_pkcs1_hashing, "SHA512", 64},
    {CKM_RSA_PKCS_PSS, MechanismKind::pss_prehashed, "", 0},
    {CKM_SHA256_RSA_PKCS_PSS, MechanismKind::pss_hashing, "SHA256", 32},
    {CKM_SHA384_RSA_PKCS_PSS, MechanismKind::pss_hashing, "SHA384", 48},
    {CKM_SHA512_RSA_PKCS_PSS, MechanismKind::pss_hashing, "SHA512", 64},
};

constexpr DigestMechanism kDigests[] = {
    {CKM_SHA256, "SHA256"},
    {CKM_SHA384, "SHA384"},
    {CKM_SHA512, "SHA512"},
};

struct PssHash {
    CK_MECHANISM_TYPE hash;
    CK_RSA_PKCS_MGF_TYPE mgf;
    size_t size;
    Scheme scheme;
};
constexpr PssHash kPssHashes[] = {
    {CKM_SHA256, CKG_MGF1_SHA256, 32, Scheme::rsa_pss_rsae_sha256},
    {CKM_SHA384, CKG_MGF1_SHA384, 48, Scheme::rsa_pss_rsae_sha384},
    {CKM_SHA512, CKG_MGF1_SHA512, 64, Scheme::rsa_pss_rsae_sha512},
};

// DER of DigestInfo up to the digest's OCTET STRING header, RFC 8017 §9.2 note 1.
struct DigestInfoPrefix {
    std::array<uint8_t, 19> bytes;
    size_t digest_size;
    Scheme scheme;
};
constexpr DigestInfoPrefix kDigestInfoPrefixes[] = {
    {{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
     32,
     Scheme::rsa_pkcs1_sha256},
    {{0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
     48,
     Scheme::rsa_pkcs1_sha384},
    {{0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
     64,
     Scheme::rsa_pkcs1_sha512},
};

}  // namespace

std::span<const MechanismInfo> all_mechanisms() noexcept { return kMechanisms; }

const MechanismInfo* find_mechanism(CK_MECHANISM_TYPE type) noexcept {
    for (const auto& m : kMechanisms)
        if (m.type == type) return &m;
    return nullptr;
}

std::span<const DigestMechanism> all_digests() noexcept { return kDigests; }

const DigestMechanism* find_digest(CK_MECHANISM_TYPE type) noexcept {
    for (const auto& d : kDigests)
        if (d.type == type) return &d;
    return nullptr;
}

bool mechanism_is_ec(const MechanismInfo& m) noexcept {
    return m.kind == MechanismKind::ecdsa_prehashed || m.kind == MechanismKind::ecdsa_hashing;
}

bool mechanism_hashes(const MechanismInfo& m) noexcept {
    return m.kind == MechanismKind::ecdsa_hashing || m.kind == MechanismKind::rsa_pkcs1_hashing ||
           m.kind == MechanismKind::pss_hashing;
}

std::optional<Scheme> pss_scheme_from_params(const MechanismInfo& m, const void* parameter,
                                             CK_ULONG parameter_len) noexcept {
    if (m.kind != MechanismKind::pss_prehashed && m.kind != MechanismKind::pss_hashing) return std::nullopt;
    if (!parameter || parameter_len != sizeof(CK_RSA_PKCS_PSS_PARAMS)) return std::nullopt;
    CK_RSA_PKCS_PSS_PARAMS p;
    std::memcpy(&p, parameter, sizeof p);
    for (const auto& h : kPssHashes) {
        if (p.hashAlg != h.hash) continue;
        if (p.mgf != h.mgf || p.sLen != h.size) return std::nullopt;
        if (m.kind == MechanismKind::pss_hashing && m.digest_size != h.size) return std::nullopt;
        return h.scheme;
    }
    return std::nullopt;
}

std::optional<ParsedDigestInfo> parse_digest_info(std::span<const uint8_t> der) noexcept {
    for (const auto& p : kDigestInfoPrefixes) {
        if (der.size() != p.bytes.size() + p.digest_size) continue;
        if (!std::equal(p.bytes.begin(), p.bytes.end(), der.begin())) continue;
        return ParsedDigestInfo{p.scheme, der.subspan(p.bytes.size())};
    }
    return std::nullopt;
}

std::vector<uint8_t> ecdsa_input_for_curve(std::span<const uint8_t> hash, size_t coordinate) {
    std::vector<uint8_t> out(coordinate, 0);
    if (hash.size() >= coordinate) std::copy_n(hash.begin(), coordinate, out.begin());
    else std::copy(hash.begin(), hash.end(), out.begin() + static_cast<std::ptrdiff_t>(coordinate - hash.size()));
    return out;
}

}  // namespace keyward::p11module
