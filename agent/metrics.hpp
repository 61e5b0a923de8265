// The agent's metrics in the Prometheus text exposition format 0.0.4 (docs/monitoring.md).
//
// Signatures are counted on the signing path, so that part is fixed arrays of relaxed
// atomics: a key's slot is found by a hash of its name (probing a fixed table, claimed once
// with a compare-and-swap), and names are matched back to slots only when the metrics are
// rendered. No lock, no allocation, no string built while signing. Denials likewise count
// per uid in a fixed table. Label cardinality is bounded by the table sizes: keys and uids
// beyond them are counted under "other".
//
// Identities come from the lifecycle thread as its JSON view (IdentityBoard), published
// after each renewal check; everything else is read when rendering.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keyward::agent::metrics {

inline constexpr size_t kKeySlots = 256;
inline constexpr size_t kUidSlots = 32;
// Signature latency bucket bounds, in µs (software tokens sign in ~100 µs, TPMs and cards
// in tens to hundreds of ms).
inline constexpr std::array<uint64_t, 14> kLatencyBoundsMicros = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000};

// FNV-1a over the name; never 0 (0 marks a free slot).
uint64_t key_hash(std::string_view name) noexcept;

struct KeyCounts {
    uint64_t hash = 0;  // 0: the "other" slot
    uint64_t ok = 0;
    uint64_t failed = 0;
    uint64_t sum_micros = 0;                                          // of successful signatures
    std::array<uint64_t, kLatencyBoundsMicros.size() + 1> buckets{};  // per bucket, not cumulative; last: +Inf
};

struct UidCounts {
    std::optional<uid_t> uid;  // nullopt: "other"
    uint64_t denials = 0;
};

class SigningCounters {
public:
    // Where a signature completes (ok or not); `elapsed` is the device's time for it.
    void signature(std::string_view key, std::chrono::steady_clock::duration elapsed, bool ok) noexcept;
    // Where a request is denied by policy.
    void denial(uid_t uid) noexcept;

    // Claimed slots and, when used, the "other" slot last.
    std::vector<KeyCounts> keys() const;
    std::vector<UidCounts> denials() const;

private:
    // A cache line or more each, so that keys signed on different threads do not share one;
    // successful signatures are the sum of the buckets (two atomic adds per signature).
    struct alignas(64) KeySlot {
        std::atomic<uint64_t> hash{0};
        std::atomic<uint64_t> failed{0};
        std::atomic<uint64_t> sum_micros{0};
        std::array<std::atomic<uint64_t>, kLatencyBoundsMicros.size() + 1> buckets{};
    };
    struct UidSlot {
        std::atomic<uint64_t> uid_plus_one{0};  // 0: free
        std::atomic<uint64_t> denials{0};
    };
    KeySlot& key_slot(uint64_t hash) noexcept;

    std::array<KeySlot, kKeySlots> keys_{};
    KeySlot other_key_{};
    std::array<UidSlot, kUidSlots> uids_{};
    std::atomic<uint64_t> other_uid_denials_{0};
};

// The process's counters.
SigningCounters& signing_counters() noexcept;

// One identity as the metrics show it.
struct IdentitySample {
    std::string name;
    std::string status;
    std::optional<int64_t> not_before;
    std::optional<int64_t> not_after;
    std::optional<int64_t> last_success;
    uint64_t failures_total = 0;  // failed attempts seen since the agent started
};

// The identities as last published by the lifecycle thread.
class IdentityBoard {
public:
    // `list_json` is Lifecycle::list_json()'s answer; bad JSON is ignored (kept: the last good one).
    void publish(const std::string& list_json);
    void clear();
    std::vector<IdentitySample> samples() const;
    // Called (from the publishing thread) when a published value changed.
    void on_change(std::function<void()> callback);

private:
    struct Tracked {
        IdentitySample sample;
        int consecutive = 0;
        int64_t last_attempt_time = 0;
    };
    mutable std::mutex mu_;
    std::vector<Tracked> identities_;
    std::function<void()> on_change_;
};

IdentityBoard& identity_board() noexcept;

struct TokenSample {
    std::string name;
    std::string kind;
    std::string state;  // device_health_name()
};

// What rendering needs besides the process-wide counters.
struct Snapshot {
    std::string version;
    double uptime_seconds = 0;
    double start_time_seconds = 0;  // Unix time
    std::vector<TokenSample> tokens;
    std::vector<std::string> key_names;  // to name the key slots
    std::vector<IdentitySample> identities;
};

// Known statuses are always listed (0 or 1) so alert rules see a 0 rather than no series;
// a status the lifecycle reports that is not in this list is listed when current.
inline constexpr std::array<std::string_view, 8> kKnownStatuses = {
    "valid", "renewal pending", "renewal failing", "expired", "revoked", "enrolling", "not enrolled", "unreadable"};

// Names are remembered once seen (a key deleted since still names its slot); `names` is
// the state between calls, owned by the caller (one per renderer).
std::string render(const Snapshot& snapshot, const SigningCounters& counters, std::vector<std::string>& names);

// Label value escaping of the text format: backslash, double quote and newline.
std::string escape_label(std::string_view value);

}  // namespace keyward::agent::metrics
