#include "agent/audit.hpp"

#include <unistd.h>

#include "agent/policy.hpp"
#include "core/journal.hpp"
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
    // The same facts as fields, for `journalctl KEYWARD_KEY=web` and log shippers.
    const std::string uid = std::to_string(caller.uid()), pid = std::to_string(caller.pid());
    const log::Field fields[] = {{"KEYWARD_AUDIT_OP", op}, {"KEYWARD_KEY", key},          {"KEYWARD_UID", uid},
                                 {"KEYWARD_PID", pid},     {"KEYWARD_EXE", caller.exe()}, {"KEYWARD_RESULT", result}};
    log::write_fields(log::Level::notice, line, fields);
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
            const SeenView seen{key, caller.uid(), caller.exe()};
            auto it = seen_.find(seen);
            if (it == seen_.end()) {
                it = seen_.emplace(Seen{std::string(key), caller.uid(), std::string(caller.exe())}, 0).first;
                record = true;
            }
            ++it->second;
            auto counted = counts_.find(CountedView{key, caller.uid()});
            if (counted == counts_.end()) counted = counts_.emplace(Counted{std::string(key), caller.uid()}, 0).first;
            ++counted->second;
        }
    }
    if (record) write(caller, "sign", key, result, mode_ == AuditMode::summary ? "first-in-interval=yes" : "");
}

void Audit::flush(Clock::time_point now) {
    std::map<Counted, uint64_t, Less> counts;
    std::chrono::seconds interval;
    {
        std::lock_guard lock(mu_);
        if (now - interval_start_ < interval_) return;
        interval_start_ = now;
        interval = interval_;
        counts.swap(counts_);
        seen_.clear();
    }
    for (const auto& [who, n] : counts) {
        const std::string uid = std::to_string(who.uid), count = std::to_string(n);
        const log::Field fields[] = {{"KEYWARD_AUDIT_OP", "sign-count"},
                                     {"KEYWARD_KEY", who.key},
                                     {"KEYWARD_UID", uid},
                                     {"KEYWARD_COUNT", count}};
        log::write_fields(log::Level::notice,
                          "audit: op=sign-count key=" + log::client_text(who.key) + " uid=" + uid + " count=" + count +
                              " interval=" + std::to_string(interval.count()) + "s",
                          fields);
    }
}

std::string executable_of(pid_t pid) {
    char buf[4096];
    const std::string link = "/proc/" + std::to_string(pid) + "/exe";
    const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
    if (n <= 0) return "?";
    return std::string(buf, static_cast<size_t>(n));
}

}  // namespace keyward::agent
