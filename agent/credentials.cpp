#include "agent/credentials.hpp"

#include <cstdlib>

namespace keyward::agent {

Result<std::string> secret_file_path(const std::string& setting, const std::string& what) {
    if (setting.rfind(kCredentialPrefix, 0) != 0) return setting;
    const std::string name = setting.substr(kCredentialPrefix.size());
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
        return Status{ErrorCode::invalid_argument,
                      what + ": \"" + setting + "\" is not a credential name (credential:NAME, no '/')"};
    const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
    if (!dir || !*dir)
        return Status{ErrorCode::invalid_argument,
                      what + " = \"" + setting +
                          "\" needs a systemd credential, but CREDENTIALS_DIRECTORY is not set "
                          "(LoadCredential=" +
                          name + ":/path in the unit, see docs/systemd.md)"};
    return std::string(dir) + "/" + name;
}

}  // namespace keyward::agent
