// The dns-01 hook: an external command (argv, no shell) that publishes or removes the
// _acme-challenge TXT record. Environment: KEYWARD_ACME_ACTION=present|cleanup,
// KEYWARD_ACME_DOMAIN (the identifier), KEYWARD_ACME_RECORD (_acme-challenge.DOMAIN),
// KEYWARD_ACME_TXT (the record's value), plus PATH. Nothing else is inherited.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace keyward::acme {

// Runs the hook and waits (killing it at the deadline). ok only when it exits 0.
Status run_dns01_hook(const std::vector<std::string>& argv, const std::string& action, const std::string& domain,
                      const std::string& txt, std::chrono::milliseconds timeout);

}  // namespace keyward::acme
