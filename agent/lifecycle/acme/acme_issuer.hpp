// ACME (RFC 8555) issuer: account key on a device, order, http-01 or dns-01 challenge,
// finalize with the on-device CSR, download the chain.
#pragma once

#include <memory>
#include <string>

#include <toml++/toml.h>

#include "agent/lifecycle/issuer.hpp"
#include "core/result.hpp"

namespace keyward::lifecycle {

// Validates an issuer table of kind "acme" (e.g. [identities.web.issuer]); errors name
// file:line and the key under `prefix` ("identities.web.issuer.directory: ...").
Status check_acme_issuer(const toml::table& issuer, const std::string& source, const std::string& prefix);

// Builds the issuer from a table check_acme_issuer accepted. `state_dir` is a private
// directory of the identity where the issuer may keep its own state (account URL).
std::unique_ptr<Issuer> make_acme_issuer(const toml::table& issuer, const std::string& state_dir);

}  // namespace keyward::lifecycle
