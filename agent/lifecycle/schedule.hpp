// When to renew and when to try again: pure arithmetic on Unix times (seconds), so the
// policy is unit-tested without clocks, CAs or devices.
#pragma once

#include <cstdint>
#include <optional>

namespace keyward::lifecycle {

struct RenewalPolicy {
    // Exactly one of these sets the renewal point: a fraction of the lifetime after
    // not_before (default 2/3), or a duration before not_after.
    double renew_fraction = 2.0 / 3.0;
    std::optional<int64_t> renew_before;
    // Random spread, applied earlier (never later) than the renewal point: a fraction of
    // the lifetime, or an absolute duration when jitter_seconds is set.
    double jitter_fraction = 0.05;
    std::optional<int64_t> jitter_seconds;
    int64_t retry_min = 60;
    int64_t retry_max = 6 * 3600;
};

// The planned renewal time of a certificate valid [not_before, not_after]. `spread` in
// [0, 1) picks the point inside the jitter window (derive it from the certificate, so the
// plan is the same after a restart). Never before not_before; for a lifetime so short that
// renew_before exceeds it, not_before itself.
int64_t renewal_time(const RenewalPolicy& policy, int64_t not_before, int64_t not_after, double spread);

// Delay before the next try after `failures` consecutive transient failures (1 for the
// first): retry_min doubling up to retry_max; never more than a quarter of the time left
// before not_after (but at least retry_min), and retry_min once expired; then scaled by
// 0.8 + 0.2 * random01 so a fleet does not retry in step. At least 1 s.
int64_t retry_delay(const RenewalPolicy& policy, int failures, int64_t now, std::optional<int64_t> not_after,
                    double random01);

// Delay after an answer that retrying will not fix by itself (rejected, misconfigured):
// retry_max with the same jitter — reported, never a tight loop.
int64_t hold_delay(const RenewalPolicy& policy, double random01);

// A stable number in [0, 1) from bytes (e.g. a certificate's serial), for renewal_time().
double spread_from(const void* data, std::size_t size);

}  // namespace keyward::lifecycle
