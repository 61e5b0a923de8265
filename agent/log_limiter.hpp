// Keeps one caller from flooding the log: per uid, the first few events of a kind in each
// window are logged in full, the rest only counted and summarised once the window ends
// ("uid=1001: 5000 more denials in the last 60 s"). Thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace keyward::agent {

class LogLimiter {
public:
    using Clock = std::chrono::steady_clock;

    // `what` names the events in summaries ("denials").
    LogLimiter(std::string what, size_t burst, std::chrono::seconds window);

    // True when this event may be logged in full; false when it was only counted.
    bool allow(uid_t uid, Clock::time_point now = Clock::now());
    // Summary lines of the windows that ended by `now` with events left out; the caller logs them.
    std::vector<std::string> summaries(Clock::time_point now = Clock::now());

private:
    struct Window {
        Clock::time_point start;
        size_t logged = 0;
        uint64_t dropped = 0;
    };
    std::string summary(uid_t uid, const Window& w) const;

    const std::string what_;
    const size_t burst_;
    const std::chrono::seconds window_;
    std::mutex mu_;
    std::unordered_map<uid_t, Window> windows_;
};

}  // namespace keyward::agent
