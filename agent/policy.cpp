#include "agent/policy.hpp"

#include <grp.h>
#include <pwd.h>

#include <algorithm>

namespace keyward::agent {

const std::vector<gid_t>& Caller::groups() const {
    if (groups_) return *groups_;
    std::vector<gid_t> result{gid_};
    passwd pw{};
    passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (::getpwuid_r(uid_, &pw, buf.data(), buf.size(), &found) == 0 && found) {
        int n = 64;
        std::vector<gid_t> list(static_cast<size_t>(n));
        if (::getgrouplist(pw.pw_name, pw.pw_gid, list.data(), &n) < 0) {
            list.resize(static_cast<size_t>(n));
            ::getgrouplist(pw.pw_name, pw.pw_gid, list.data(), &n);
        }
        list.resize(static_cast<size_t>(std::max(n, 0)));
        result.insert(result.end(), list.begin(), list.end());
    }
    groups_ = std::move(result);
    return *groups_;
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
