#include "agent/log_limiter.hpp"

namespace keyward::agent {

LogLimiter::LogLimiter(std::string what, size_t burst, std::chrono::seconds window)
        : what_(std::move(what)), burst_(burst), window_(window) {}

std::string LogLimiter::summary(uid_t uid, const Window& w) const {
    return "uid=" + std::to_string(uid) + ": " + std::to_string(w.dropped) + " more " + what_ + " in the last " +
           std::to_string(window_.count()) + " s";
}

bool LogLimiter::allow(uid_t uid, Clock::time_point now) {
    std::lock_guard lock(mu_);
    auto [it, fresh] = windows_.try_emplace(uid, Window{now});
    Window& w = it->second;
    if (!fresh && now - w.start >= window_ && w.dropped == 0) w = Window{now};  // nothing to report: start over
    if (now - w.start < window_ && w.logged < burst_) {
        ++w.logged;
        return true;
    }
    ++w.dropped;
    return false;
}

std::vector<std::string> LogLimiter::summaries(Clock::time_point now) {
    std::vector<std::string> out;
    std::lock_guard lock(mu_);
    for (auto it = windows_.begin(); it != windows_.end();) {
        Window& w = it->second;
        if (now - w.start < window_) {
            ++it;
            continue;
        }
        if (w.dropped > 0) out.push_back(summary(it->first, w));
        it = windows_.erase(it);  // the next event opens a new window
    }
    return out;
}

}  // namespace keyward::agent
