// `keyward doctor`: the agent's health, one check per line, each failure with its fix
// (docs/monitoring.md lists the checks). The running agent answers the DOCTOR request with
// what it sees live (tokens, keys, identities); `keywardd --doctor --config FILE` checks a
// configuration file without an agent, as far as that can be done offline.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/config.hpp"
#include "agent/key_registry.hpp"

namespace keyward::agent {

enum class CheckLevel { ok, warning, failure, skipped };

struct Check {
    std::string area;  // "config", "state_dir", "token", "key", "identity", "clock", "socket", "metrics"
    std::string name;  // what was checked: a path, a token's, key's or identity's name
    CheckLevel level = CheckLevel::ok;
    std::string message;
    std::string fix;  // for warnings and failures
};

// `registry` null: offline (the checks that need the agent's devices are skipped or done on
// files only). Blocks up to a few seconds per identity whose issuer it probes.
std::vector<Check> run_doctor(const AgentConfig& config, const std::shared_ptr<KeyRegistry>& registry);

// {"checks": [{"area", "name", "level", "message", "fix"}], "ok": n, "warnings": n, "failures": n}
std::string doctor_json(const std::vector<Check>& checks);

}  // namespace keyward::agent
