// Where the embedded token's user PIN lives: in user.pin (0600) beside the token, or sealed
// to the machine's TPM in user.pin.sealed, so that a copy of the state directory is useless
// without this TPM. A sealed PIN is unsealed at start into an anonymous, sealed memory file
// (memfd, 0600, never on disk) that the PKCS#11 backend reads like a PIN file.
#pragma once

#include <string>
#include <vector>

#include "core/result.hpp"

namespace keyward::agent {

// 16 random bytes as 32 hex digits: the embedded token's PINs.
Result<std::string> random_pin();

// `seal` is [agent] seal_embedded_pin: "auto" (seal when /dev/tpmrm0 can be opened), "no",
// or the TCTI of the TPM to seal to ("device:/dev/tpmrm0", "swtpm:path=...").
struct EmbeddedPinPlan {
    std::string seal_tcti;  // empty: the PIN stays in user.pin
};
EmbeddedPinPlan plan_embedded_pin(const std::string& seal);

// For a new token: makes a random user PIN and stores it as the plan says (sealed or in
// user.pin). Returns the PIN, for the token's initialisation.
Result<std::string> create_embedded_pin(const std::string& state_dir, const EmbeddedPinPlan& plan);

// For an existing token: the path the PKCS#11 backend reads the PIN from — user.pin, or the
// memory file holding the unsealed PIN (created once per process and state directory). An
// explicit TCTI with a PIN still in user.pin seals it and removes the file.
Result<std::string> embedded_pin_path(const std::string& state_dir, const std::string& seal);

}  // namespace keyward::agent
