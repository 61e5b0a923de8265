// Independent checks with OpenSSL of what the backend produced.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "ipc/protocol.hpp"

namespace keyward::test {

// Verifies `signature` over the prehashed `digest` with the SPKI's public key under `scheme`
// (PSS: salt length = hash length, MGF1 with the same hash).
bool verify_signature(std::span<const uint8_t> spki, ipc::Scheme scheme, std::span<const uint8_t> digest,
                      std::span<const uint8_t> signature);

// Bits of the SPKI's key; 0 if it does not parse.
int spki_bits(std::span<const uint8_t> spki);

std::vector<uint8_t> random_bytes(size_t n);

}  // namespace keyward::test
