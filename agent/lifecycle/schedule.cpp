#include "agent/lifecycle/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace keyward::lifecycle {

int64_t renewal_time(const RenewalPolicy& policy, int64_t not_before, int64_t not_after, double spread) {
    const int64_t lifetime = std::max<int64_t>(0, not_after - not_before);
    int64_t point = policy.renew_before
                        ? not_after - *policy.renew_before
                        : not_before + static_cast<int64_t>(std::floor(lifetime * policy.renew_fraction));
    const int64_t window = policy.jitter_seconds ? *policy.jitter_seconds
                                                 : static_cast<int64_t>(std::floor(lifetime * policy.jitter_fraction));
    spread = std::clamp(spread, 0.0, 1.0);
    point -= static_cast<int64_t>(std::floor(window * spread));
    return std::clamp(point, not_before, std::max(not_before, not_after));
}

int64_t retry_delay(const RenewalPolicy& policy, int failures, int64_t now, std::optional<int64_t> not_after,
                    double random01) {
    const int64_t lo = std::max<int64_t>(1, policy.retry_min);
    const int64_t hi = std::max(lo, policy.retry_max);
    int64_t step = lo;
    for (int i = 1; i < failures && step < hi; ++i) step = std::min(hi, step * 2);
    if (not_after) {
        const int64_t left = *not_after - now;
        step = left <= 0 ? lo : std::min(step, std::max(lo, left / 4));
    }
    const double scale = 0.8 + 0.2 * std::clamp(random01, 0.0, 1.0);
    return std::max<int64_t>(1, static_cast<int64_t>(std::llround(step * scale)));
}

int64_t hold_delay(const RenewalPolicy& policy, double random01) {
    const int64_t hi = std::max<int64_t>(1, std::max(policy.retry_min, policy.retry_max));
    const double scale = 0.8 + 0.2 * std::clamp(random01, 0.0, 1.0);
    return std::max<int64_t>(1, static_cast<int64_t>(std::llround(hi * scale)));
}

double spread_from(const void* data, std::size_t size) {
    // FNV-1a: stable across runs and platforms, good enough to spread a fleet.
    uint64_t h = 1469598103934665603ull;
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < size; ++i) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return static_cast<double>(h >> 11) / static_cast<double>(1ull << 53);
}

}  // namespace keyward::lifecycle
