#include "agent/lifecycle/issuers.hpp"

#include "agent/lifecycle/acme/acme_issuer.hpp"
#include "agent/lifecycle/cmp/cmp_issuer.hpp"

namespace keyward::lifecycle {

IssuerKinds built_in_issuer_kinds() {
    return {
        {"acme", check_acme_issuer, make_acme_issuer},
        {"cmp", check_cmp_issuer,
         [](const toml::table& issuer, const std::string&) { return make_cmp_issuer(issuer); }},
    };
}

}  // namespace keyward::lifecycle
