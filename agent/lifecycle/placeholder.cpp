// Placeholder until the lifecycle lands: identities are refused with a clear message.
#include "agent/lifecycle/lifecycle.hpp"

namespace keyward::lifecycle {

struct IdentityConfig {};

bool same_identity_config(const IdentityConfig&, const IdentityConfig&) { return true; }

Result<std::vector<std::shared_ptr<const IdentityConfig>>> parse_identities(const toml::table& section,
                                                                             const std::string& source) {
    if (section.empty()) return std::vector<std::shared_ptr<const IdentityConfig>>{};
    return Status{ErrorCode::invalid_argument, source + ": identities: not supported by this build yet"};
}

std::unique_ptr<Lifecycle> make_lifecycle(std::vector<std::shared_ptr<const IdentityConfig>>, KeyAccess,
                                          const std::string&) {
    return nullptr;
}

}  // namespace keyward::lifecycle
