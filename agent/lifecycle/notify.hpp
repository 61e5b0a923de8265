// Notifications: the identity's `notify` programs run when it enters a status that needs a
// person (renewal failing, expired, revoked) and when its certificate's time left drops
// below each of `notify_before` (default 7d and 1d). What was announced is kept in
// DIR/notify.json, written before the programs run, so a restart never announces it again
// (at most once; a crash between the write and the run loses that one notification).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/lifecycle/identity_config.hpp"

namespace keyward::lifecycle {

// The statuses whose entry is announced.
inline constexpr const char* kNotifiedStatuses[] = {"renewal failing", "expired", "revoked"};

struct NotifyState {
    std::string serial;               // the certificate the thresholds below are for
    std::vector<int64_t> thresholds;  // already announced for it, in seconds
    std::string status;               // the announced status still current ("" once left)
};

struct Notification {
    std::string event;      // a status from kNotifiedStatuses, or "expiring"
    int64_t threshold = 0;  // for "expiring"
};

// Pure: what to announce given the identity's view (status, serial, not_after_unix) and
// what was announced before; updates `state`. At most one "expiring" per call, for the
// smallest threshold crossed (a start with 12 h left announces 1d, not also 7d).
std::vector<Notification> due_notifications(const IdentityConfig& cfg, const nlohmann::ordered_json& view,
                                            NotifyState& state, int64_t now);

// Loads DIR/notify.json, works out what is due, saves, runs the programs (never throws).
void notify_changes(const IdentityConfig& cfg, const std::string& dir, const nlohmann::ordered_json& view, int64_t now);

}  // namespace keyward::lifecycle
