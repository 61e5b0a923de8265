// Who may do what. Default: deny. Root and the agent's own uid (which can read the
// tokens' PIN files anyway) may do everything; everyone else needs a grant in the config.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config.hpp"

namespace keyward::agent {

// A connected peer as the kernel reported it at connect time: SO_PEERCRED for the ids,
// SO_PEERGROUPS for the groups the process itself held, not what the user database says
// (a process that dropped its groups has dropped their rights too).
class Caller {
public:
    Caller(uid_t uid, gid_t gid, pid_t pid, std::vector<gid_t> supplementary)
            : uid_(uid), gid_(gid), pid_(pid), groups_(std::move(supplementary)) {
        groups_.insert(groups_.begin(), gid);
    }
    uid_t uid() const noexcept { return uid_; }
    gid_t gid() const noexcept { return gid_; }
    pid_t pid() const noexcept { return pid_; }
    // The primary group, then the supplementary groups.
    const std::vector<gid_t>& groups() const noexcept { return groups_; }
    // The executable at connect time, for audit records ("?" when unknown).
    const std::string& exe() const noexcept { return exe_; }
    void set_exe(std::string exe) { exe_ = std::move(exe); }

private:
    uid_t uid_;
    gid_t gid_;
    pid_t pid_;
    std::vector<gid_t> groups_;
    std::string exe_ = "?";
};

// The caller at the other end of a connected Unix socket; nullopt (errno set) when the
// kernel cannot tell.
std::optional<Caller> peer_of(int fd);

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
