// The issuer kinds this build of keywardd has besides the helper command: ACME and CMP.
// The one place that knows them all; the agent passes the list to the lifecycle.
#pragma once

#include "agent/lifecycle/issuer.hpp"

namespace keyward::lifecycle {

IssuerKinds built_in_issuer_kinds();

}  // namespace keyward::lifecycle
