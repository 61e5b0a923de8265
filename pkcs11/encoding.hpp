// The byte formats between PKCS#11 and the rest of the world: DER ECDSA signatures,
// PKCS#1 DigestInfo, SubjectPublicKeyInfo from token attributes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/key_backend.hpp"
#include "core/result.hpp"

namespace keyward::pkcs11 {

// DER OIDs as they appear in CKA_EC_PARAMS.
std::span<const uint8_t> ec_params_der(KeyType type) noexcept;  // empty for RSA types
std::optional<KeyType> ec_type_from_params(std::span<const uint8_t> params) noexcept;

// ECDSA-Sig-Value DER from PKCS#11's raw r||s (two equal halves). Appends to `out`.
bool ecdsa_raw_to_der(std::span<const uint8_t> raw, std::vector<uint8_t>& out);

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
