// Key-reference files: a PEM block that names an agent-held key and carries its public
// key, so programs that only take a key *file path* can use it once the keyward provider
// is active. It holds no secret: the private key never leaves the device.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace keyward {

inline constexpr std::string_view kKeyReferencePemLabel = "KEYWARD KEY";

struct KeyReference {
    std::string name;           // the key's name in the agent
    std::vector<uint8_t> spki;  // SubjectPublicKeyInfo DER
};

// DER body of the PEM block (what the provider's DECODER sees after PEM decoding).
std::vector<uint8_t> encode_key_reference_der(const KeyReference& ref);
Result<KeyReference> decode_key_reference_der(std::span<const uint8_t> der);

std::string encode_key_reference_pem(const KeyReference& ref);
Result<KeyReference> decode_key_reference_pem(std::string_view pem);

}  // namespace keyward
