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
    // The maps are looked up with views of the caller's strings (transparent comparison):
    // a signature that is not the first of its kind in the interval allocates nothing.
    struct Seen {
        std::string key;
        uid_t uid;
        std::string exe;
    };
    struct SeenView {
        std::string_view key;
        uid_t uid;
        std::string_view exe;
    };
    struct Counted {
        std::string key;
        uid_t uid;
    };
    struct CountedView {
        std::string_view key;
        uid_t uid;
    };
    struct Less {
        using is_transparent = void;
        template <typename A, typename B>
        bool operator()(const A& a, const B& b) const noexcept {
            return tie(a) < tie(b);
        }
        static auto tie(const Seen& s) noexcept {
            return std::tuple<std::string_view, uid_t, std::string_view>(s.key, s.uid, s.exe);
        }
        static auto tie(const SeenView& s) noexcept {
            return std::tuple<std::string_view, uid_t, std::string_view>(s.key, s.uid, s.exe);
        }
        static auto tie(const Counted& c) noexcept { return std::tuple<std::string_view, uid_t>(c.key, c.uid); }
        static auto tie(const CountedView& c) noexcept { return std::tuple<std::string_view, uid_t>(c.key, c.uid); }
    };
    // (key, uid, executable) seen in this interval: their first signature was recorded.
    std::map<Seen, uint64_t, Less> seen_;
    std::map<Counted, uint64_t, Less> counts_;
};

// The executable of a process, for audit records ("?" when the agent may not read it).
std::string executable_of(pid_t pid);

}  // namespace keyward::agent
