// The ACME account URL ("kid") kept in the identity's state directory, bound to the
// directory URL and the account key's thumbprint so a changed CA or key re-registers.
#pragma once

#include <optional>
#include <string>

#include "core/result.hpp"

namespace keyward::acme {

struct AccountState {
    std::string directory;
    std::string thumbprint;
    std::string url;
};

inline constexpr const char* kAccountStateFile = "acme-account.json";

// nullopt when missing, unreadable or malformed (registration simply happens again).
std::optional<AccountState> load_account_state(const std::string& state_dir);
// Atomic: temp file, fsync, rename, fsync of the directory. Creates state_dir (0700) if needed.
Status save_account_state(const std::string& state_dir, const AccountState& state);
void forget_account_state(const std::string& state_dir);

}  // namespace keyward::acme
