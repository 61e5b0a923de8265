// The audit trail of key use: who (uid, pid, executable) did what (op) with which key, and
// how it ended. Management operations (create, import, delete, renew, rollback) are recorded
// one by one. Signatures are many: by default the first signature of each (key, uid,
// executable) in an interval is recorded, and at the end of the interval a count per
// (key, uid); `audit = "every-signature"` records each one. Records are single lines,
// `audit: op=sign key=web uid=1000 pid=4242 exe=/usr/bin/curl result=ok`, with
// client-chosen text escaped (docs/security.md). Thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>

namespace keyward::agent {

class Caller;

enum class AuditMode { summary, every_signature };

class Audit {
public:
    using Clock = std::chrono::steady_clock;

    void configure(AuditMode mode, std::chrono::seconds interval);

    // `result` is "ok" or the error code's name.
    void management(const Caller& caller, std::string_view op, std::string_view key, std::string_view result);
    void signature(const Caller& caller, std::string_view key, std::string_view result);
    // Closes the interval when it is over: one count record per (key, uid) that signed.
    void flush(Clock::time_point now = Clock::now());

private:
    void write(const Caller& caller, std::string_view op, std::string_view key, std::string_view result,
               std::string_view extra = {});

    std::mutex mu_;
    AuditMode mode_ = AuditMode::summary;
    std::chrono::seconds interval_{600};
    Clock::time_point interval_start_ = Clock::now();
    // (key, uid, executable) seen in this interval: their first signature was recorded.
    std::map<std::tuple<std::string, uid_t, std::string>, uint64_t> seen_;
    std::map<std::pair<std::string, uid_t>, uint64_t> counts_;
};

// The executable of a process, for audit records ("?" when the agent may not read it).
std::string executable_of(pid_t pid);

}  // namespace keyward::agent
