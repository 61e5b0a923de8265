// Opening a file that holds a secret (a PIN, a TPM auth value): refused unless only its owner
// can read it and that owner is root or the user the agent runs as. A PIN that other users can
// read is a PIN they have; saying so at start is kinder than a silent compromise.
#pragma once

#include <string>
#include <string_view>

#include "core/result.hpp"
#include "core/unique_fd.hpp"

namespace keyward::files {

// Opens `path` read-only (O_CLOEXEC, following symlinks: systemd's credential directory and
// packaging tools use them) and checks what it points at. `what` names the setting in errors
// ("the PIN file"). Errors: device_unavailable when it cannot be opened (it may appear
// later), access_denied for a loose mode or a foreign owner, with the command that fixes it.
Result<UniqueFd> open_secret(const std::string& path, std::string_view what);

}  // namespace keyward::files
