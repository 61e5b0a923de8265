// The signing mechanisms the module offers and how each becomes one of the agent's TLS
// signature schemes (core/schemes.hpp). Pure: no I/O, no module state, so every parser here
// is unit-tested with truncated, oversized and garbage input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include <p11-kit/pkcs11.h>

#include "core/key_types.hpp"
#include "core/schemes.hpp"

namespace keyward::p11module {

enum class MechanismKind {
    ecdsa_prehashed,  // CKM_ECDSA: the caller gives the hash
    ecdsa_hashing,    // CKM_ECDSA_SHA*: we hash
    rsa_digest_info,  // CKM_RSA_PKCS: the caller gives a DigestInfo
    rsa_pkcs1_hashing,
    pss_prehashed,  // CKM_RSA_PKCS_PSS: the caller gives the hash
    pss_hashing,
};

struct MechanismInfo {
    CK_MECHANISM_TYPE type;
    MechanismKind kind;
    std::string_view digest;  // OpenSSL digest name for the hashing kinds and PSS; empty otherwise
    size_t digest_size;       // 0 when the caller's input decides (CKM_ECDSA, CKM_RSA_PKCS, CKM_RSA_PKCS_PSS)
};

// Every mechanism offered, in the order C_GetMechanismList reports them.
std::span<const MechanismInfo> all_mechanisms() noexcept;
const MechanismInfo* find_mechanism(CK_MECHANISM_TYPE type) noexcept;
bool mechanism_is_ec(const MechanismInfo& m) noexcept;
// Whether the mechanism hashes the data itself (and so takes C_SignUpdate/C_SignFinal).
bool mechanism_hashes(const MechanismInfo& m) noexcept;

// Digest mechanisms, computed in the module with OpenSSL: nothing secret, but consumers
// ask for them — SunPKCS11 offers RSASSA-PSS only when the token lists the PSS hash.
struct DigestMechanism {
    CK_MECHANISM_TYPE type;
    std::string_view name;  // OpenSSL digest name
};
std::span<const DigestMechanism> all_digests() noexcept;
const DigestMechanism* find_digest(CK_MECHANISM_TYPE type) noexcept;

// CK_RSA_PKCS_PSS_PARAMS: the agent makes PSS signatures with MGF1 over the same hash and
// salt = hash length (what TLS 1.3 requires), nothing else. For the hashing PSS
// mechanisms the hash must be the mechanism's own; for CKM_RSA_PKCS_PSS it names the hash
// of the input. Returns the scheme, or nullopt (CKR_MECHANISM_PARAM_INVALID).
std::optional<Scheme> pss_scheme_from_params(const MechanismInfo& m, const void* parameter,
                                             CK_ULONG parameter_len) noexcept;

// A DigestInfo (RFC 8017 §9.2) for SHA-256/384/512 with NULL parameters, exactly as the
// agent will rebuild it: the scheme and the digest inside. Anything else (SHA-1, MD5,
// absent parameters, trailing bytes, the TLS 1.0 MD5+SHA-1 concatenation) is nullopt.
struct ParsedDigestInfo {
    Scheme scheme;
    std::span<const uint8_t> digest;
};
std::optional<ParsedDigestInfo> parse_digest_info(std::span<const uint8_t> der) noexcept;

// The ECDSA input the agent takes for a curve of `coordinate` bytes from a hash of any
// length: ECDSA uses the leftmost bits of the hash up to the order's size (FIPS 186-4
// §6.4), and P-256/P-384 orders are whole bytes, so a longer hash is cut and a shorter one
// left-padded with zeros (the same integer) — the signature is the one the caller asked for.
std::vector<uint8_t> ecdsa_input_for_curve(std::span<const uint8_t> hash, size_t coordinate);

}  // namespace keyward::p11module
