// Who may do what. Default: deny. Root and the agent's own uid (which can read the
// tokens' PIN files anyway) may do everything; everyone else needs a grant in the config.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string_view>
#include <vector>

#include "agent/config.hpp"

namespace keyward::agent {

// A connected peer as SO_PEERCRED reported it at accept time.
class Caller {
public:
    Caller(uid_t uid, gid_t gid, pid_t pid) : uid_(uid), gid_(gid), pid_(pid) {}
    uid_t uid() const noexcept { return uid_; }
    gid_t gid() const noexcept { return gid_; }
    pid_t pid() const noexcept { return pid_; }
    // Primary and supplementary groups of the uid, looked up once, when first needed.
    const std::vector<gid_t>& groups() const;

private:
    uid_t uid_;
    gid_t gid_;
    pid_t pid_;
    mutable std::optional<std::vector<gid_t>> groups_;
};

class AccessPolicy {
public:
    AccessPolicy(const AgentConfig& config, uid_t agent_uid);
    bool may_sign(const Caller& caller, std::string_view key) const;
    bool may_manage(const Caller& caller) const;  // generate, delete

private:
    bool owner(const Caller& caller) const noexcept;
    static bool granted(const Caller& caller, const Principals& p);

    AgentConfig config_;
    uid_t agent_uid_;
};

}  // namespace keyward::agent
