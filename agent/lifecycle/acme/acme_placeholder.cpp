// Placeholder until the ACME client lands.
#include "agent/lifecycle/acme/acme_issuer.hpp"

namespace keyward::lifecycle {

Status check_acme_issuer(const toml::table&, const std::string& source, const std::string& prefix) {
    return {ErrorCode::invalid_argument, source + ": " + prefix + ": ACME is not supported by this build yet"};
}

std::unique_ptr<Issuer> make_acme_issuer(const toml::table&, const std::string&) { return nullptr; }

}  // namespace keyward::lifecycle
