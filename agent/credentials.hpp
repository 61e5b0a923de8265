// Secrets handed over by systemd: `pin_file = "credential:NAME"` (and `auth_file`) names a
// credential of the service (LoadCredential=, LoadCredentialEncrypted=, SetCredential=),
// read from $CREDENTIALS_DIRECTORY/NAME, which only the service can read and which never
// appears in argv, the environment or the unit's configuration.
#pragma once

#include <string>

#include "core/result.hpp"

namespace keyward::agent {

inline constexpr std::string_view kCredentialPrefix = "credential:";

// The file a pin_file/auth_file setting names: a path as given, or a credential's file.
// Errors say what is missing (a bad name, no CREDENTIALS_DIRECTORY).
Result<std::string> secret_file_path(const std::string& setting, const std::string& what);

}  // namespace keyward::agent
