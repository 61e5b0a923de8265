#include "agent/audit.hpp"

#include <unistd.h>

#include "agent/policy.hpp"
#include "core/log.hpp"

namespace keyward::agent {

void Audit::configure(AuditMode mode, std::chrono::seconds interval) {
    std::lock_guard lock(mu_);
    mode_ = mode;
    interval_ = interval;
}

void Audit::write(const Caller& caller, std::string_view op, std::string_view key, std::string_view result,
                  std::string_view extra) {
    std::string line = "audit: op=" + std::string(op);
    if (!key.empty()) line += " key=" + log::client_text(key);
    line += " uid=" + std::to_string(caller.uid()) + " pid=" + std::to_string(caller.pid()) +
            " exe=" + log::client_text(caller.exe(), 256) + " result=" + std::string(result);
    if (!extra.empty()) line += " " + std::string(extra);
    log::notice(line);
}

void Audit::management(const Caller& caller, std::string_view op, std::string_view key, std::string_view result) {
    write(caller, op, key, result);
}

void Audit::signature(const Caller& caller, std::string_view key, std::string_view result) {
    bool record = false;
    {
        std::lock_guard lock(mu_);
        if (mode_ == AuditMode::every_signature) {
            record = true;
        } else {
            auto [it, first] = seen_.try_emplace({std::string(key), caller.uid(), caller.exe()}, 0);
            ++it->second;
            record = first;
            ++counts_[{std::string(key), caller.uid()}];
        }
    }
    if (record) write(caller, "sign", key, result, mode_ == AuditMode::summary ? "first-in-interval=yes" : "");
}

void Audit::flush(Clock::time_point now) {
    std::map<std::pair<std::string, uid_t>, uint64_t> counts;
    std::chrono::seconds interval;
    {
        std::lock_guard lock(mu_);
        if (now - interval_start_ < interval_) return;
        interval_start_ = now;
        interval = interval_;
        counts.swap(counts_);
        seen_.clear();
    }
    for (const auto& [who, n] : counts)
        log::notice("audit: op=sign-count key=" + log::client_text(who.first) + " uid=" + std::to_string(who.second) +
                    " count=" + std::to_string(n) + " interval=" + std::to_string(interval.count()) + "s");
}

std::string executable_of(pid_t pid) {
    char buf[4096];
    const std::string link = "/proc/" + std::to_string(pid) + "/exe";
    const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
    if (n <= 0) return "?";
    return std::string(buf, static_cast<size_t>(n));
}

}  // namespace keyward::agent
