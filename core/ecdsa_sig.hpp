// ECDSA signatures between the forms devices and protocols use: DER ECDSA-Sig-Value (what
// the agent answers and X.509/TLS carry), r and s as big-endian integers (TPM), raw r||s
// (PKCS#11, JOSE). One encoder for every backend: allocation-free on the signing path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/result.hpp"

namespace keyward {

// DER ECDSA-Sig-Value from unsigned big-endian r and s (leading zeros allowed). Appends to
// `out`; false for an empty value.
bool ecdsa_rs_to_der(std::span<const uint8_t> r, std::span<const uint8_t> s, std::vector<uint8_t>& out);
// The same from raw r||s (two equal halves).
bool ecdsa_raw_to_der(std::span<const uint8_t> raw, std::vector<uint8_t>& out);
// Raw r||s, each padded to `coordinate` bytes, from DER (JOSE's ES256/ES384 form).
Result<std::vector<uint8_t>> ecdsa_der_to_raw(std::span<const uint8_t> der, size_t coordinate);

}  // namespace keyward
