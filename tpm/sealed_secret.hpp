// A small secret (the embedded token's user PIN) sealed to one TPM: a keyed-hash object whose
// sensitive data is the secret, under the TPM's storage parent (the SRK, or the owner
// hierarchy's derived primary). The blob on disk is useless without that TPM, so a copy of the
// state directory is not a copy of the keys. The secret crosses the bus only encrypted
// (parameter encryption in a session salted to the parent), both ways.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace keyward::tpm {

// Seals `secret` (at most 128 bytes) to the TPM reached through `tcti`; returns the blob
// to store ("KWSEAL" v1: parent handle, marshalled TPM2B_PUBLIC and TPM2B_PRIVATE).
Result<std::vector<uint8_t>> seal_secret(const std::string& tcti, std::span<const uint8_t> secret);

// Unseals a blob made by seal_secret into `out` (cleared first). device_error with "made by
// another TPM" when this TPM cannot load it; invalid_argument when the blob is malformed.
Status unseal_secret(const std::string& tcti, std::span<const uint8_t> blob, std::vector<uint8_t>& out);

}  // namespace keyward::tpm
