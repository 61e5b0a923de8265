// The byte formats between PKCS#11 and the rest of the world: DER ECDSA signatures,
// PKCS#1 DigestInfo, SubjectPublicKeyInfo from token attributes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/ecdsa_sig.hpp"  // ecdsa_raw_to_der: PKCS#11 answers raw r||s
#include "core/key_backend.hpp"
#include "core/result.hpp"

namespace keyward::pkcs11 {

// DER OIDs as they appear in CKA_EC_PARAMS.
std::span<const uint8_t> ec_params_der(KeyType type) noexcept;  // empty for RSA types
std::optional<KeyType> ec_type_from_params(std::span<const uint8_t> params) noexcept;

// Longest DigestInfo keyward builds (SHA-512): 19-byte prefix + 64-byte hash.
inline constexpr size_t kMaxDigestInfoSize = 19 + 64;
// Writes DigestInfo(hash) for a SHA-256/384/512 digest (chosen by its size) into `out`;
// returns its length, 0 for any other size.
size_t build_digest_info(std::span<const uint8_t> digest, uint8_t* out) noexcept;

// SPKI DER for an EC public key: CKA_EC_PARAMS plus CKA_EC_POINT (DER OCTET STRING, or the
// bare point some tokens return).
Result<std::vector<uint8_t>> ec_spki(KeyType type, std::span<const uint8_t> ec_point);
Result<std::vector<uint8_t>> rsa_spki(std::span<const uint8_t> modulus, std::span<const uint8_t> exponent);

}  // namespace keyward::pkcs11
