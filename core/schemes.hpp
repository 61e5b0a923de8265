// The signature schemes keyward signs with, named after TLS SignatureSchemes, and the one
// decision of which of them a key can use. The backends, the agent, the provider, the
// engine, the CLI and the lifecycle all ask here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "core/key_types.hpp"

namespace keyward {

// TLS 1.3 SignatureScheme code points (RFC 8446 §4.2.3): stable and well known, and what
// the wire protocol carries.
enum class Scheme : uint16_t {
    rsa_pkcs1_sha256 = 0x0401,
    rsa_pkcs1_sha384 = 0x0501,
    rsa_pkcs1_sha512 = 0x0601,
    ecdsa_secp256r1_sha256 = 0x0403,
    ecdsa_secp384r1_sha384 = 0x0503,
    rsa_pss_rsae_sha256 = 0x0804,
    rsa_pss_rsae_sha384 = 0x0805,
    rsa_pss_rsae_sha512 = 0x0806,
};

enum class SchemeFamily { ecdsa, rsa_pkcs1, rsa_pss };

struct SchemeInfo {
    Scheme scheme;
    std::string_view name;  // "ecdsa_secp256r1_sha256"
    SchemeFamily family;
    std::string_view digest;  // OpenSSL digest name: "SHA256"
    size_t digest_size;       // bytes
};

// Every scheme keyward knows, in preference order.
const std::vector<SchemeInfo>& all_schemes();
const SchemeInfo* scheme_info(Scheme s) noexcept;
const SchemeInfo* scheme_by_name(std::string_view name) noexcept;
const SchemeInfo* scheme_from_u16(uint16_t v) noexcept;

// Whether a key of `type` can sign with `scheme` at all: an EC key signs only with the
// ECDSA scheme of its curve, an RSA key with PKCS#1 v1.5, and with PSS when its device
// makes PSS signatures with salt = hash length (`with_pss`).
bool scheme_fits(KeyType type, const SchemeInfo& scheme, bool with_pss) noexcept;
// The schemes a key of `type` can use, in preference order.
std::vector<Scheme> schemes_for(KeyType type, bool with_pss);

// The scheme of a family for a digest of `digest_size` bytes (32, 48, 64), e.g. for an
// RSA signature OpenSSL asked for by digest; nullopt when there is none. For ECDSA the
// curve decides, not the digest: use ecdsa_scheme_for().
std::optional<Scheme> rsa_scheme_for(SchemeFamily family, size_t digest_size) noexcept;
// The ECDSA scheme of a curve size in bits (256, 384); nullopt for any other curve.
std::optional<Scheme> ecdsa_scheme_for(int curve_bits) noexcept;

}  // namespace keyward
