// After a switch: the identity's hook commands, then `systemctl reload` of its units. A
// failure is reported (and logged) but never undoes the switch: the new certificate is
// valid, only the service has not picked it up yet.
#pragma once

#include "agent/lifecycle/identity_config.hpp"
#include "agent/lifecycle/state.hpp"
#include "agent/lifecycle/store.hpp"

namespace keyward::lifecycle {

// Runs every hook and reload (all of them, even after a failure) and sums them up.
Attempt run_hooks(const IdentityConfig& identity, const GenerationFiles& files, const std::string& key, int64_t now);

}  // namespace keyward::lifecycle
