// Asking lifecycle work in progress to stop (the agent is shutting down): a flag the
// lifecycle raises and the issuers look at between steps and while they wait. What is cut
// short is left as a crash at that point would leave it, and finished the same way.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

namespace keyward::lifecycle {

using CancelFlag = std::atomic<bool>;

inline bool is_cancelled(const CancelFlag* flag) noexcept {
    return flag != nullptr && flag->load(std::memory_order_relaxed);
}

// Sleeps `wait` in short steps; false as soon as the flag is raised.
inline bool sleep_unless_cancelled(std::chrono::milliseconds wait, const CancelFlag* flag) {
    const auto end = std::chrono::steady_clock::now() + wait;
    for (;;) {
        if (is_cancelled(flag)) return false;
        const auto now = std::chrono::steady_clock::now();
        if (now >= end) return true;
        std::this_thread::sleep_for(
            std::min<std::chrono::steady_clock::duration>(end - now, std::chrono::milliseconds(100)));
    }
}

}  // namespace keyward::lifecycle
