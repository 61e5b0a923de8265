#include "agent/policy.hpp"

#include <sys/socket.h>

#include <cerrno>

#include <algorithm>

namespace keyward::agent {

std::optional<Caller> peer_of(int fd) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return std::nullopt;
    std::vector<gid_t> groups(32);
    for (;;) {
        socklen_t size = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &size) == 0) {
            groups.resize(size / sizeof(gid_t));
            break;
        }
        // ERANGE tells the size needed; anything else means we cannot know the groups.
        if (errno != ERANGE || size / sizeof(gid_t) <= groups.size()) return std::nullopt;
        groups.resize(size / sizeof(gid_t));
    }
    return Caller(cred.uid, cred.gid, cred.pid, std::move(groups));
}

AccessPolicy::AccessPolicy(const AgentConfig& config, uid_t agent_uid) : config_(config), agent_uid_(agent_uid) {}

bool AccessPolicy::owner(const Caller& caller) const noexcept {
    return caller.uid() == 0 || caller.uid() == agent_uid_;
}

bool AccessPolicy::granted(const Caller& caller, const Principals& p) {
    if (std::find(p.users.begin(), p.users.end(), caller.uid()) != p.users.end()) return true;
    if (p.groups.empty()) return false;
    for (gid_t g : caller.groups())
        if (std::find(p.groups.begin(), p.groups.end(), g) != p.groups.end()) return true;
    return false;
}

bool AccessPolicy::may_sign(const Caller& caller, std::string_view key) const {
    if (owner(caller)) return true;
    const KeyConfig* kc = config_.key(key);
    return granted(caller, kc ? kc->allow : config_.default_allow);
}

bool AccessPolicy::may_manage(const Caller& caller) const { return owner(caller) || granted(caller, config_.admins); }

}  // namespace keyward::agent
