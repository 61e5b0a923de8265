// The lifecycle behind lifecycle.hpp, private to agent/lifecycle. Per identity it decides
// when to renew, runs one attempt (key, CSR on the device, issuer, validation), installs
// the result with the two-phase swap, runs hooks, destroys replaced keys after their grace
// period, and remembers all of it in state.json (docs/renewal.md). One file per job:
//
//   lifecycle.cpp  construction, the public calls (each under the identity's lock), the
//                  schedule: when an identity is due, backoff after a failure
//   recovery.cpp   entering an identity: its state as on disk and, once, the
//                  reconciliation after a crash
//   attempt.cpp    one attempt: the key, the CSR signed on the device, the issuer's answer
//   install.cpp    validation, the two-phase swap, hooks, rollback
//   key_gc.cpp     replaced keys destroyed after their grace period
//   revoke.cpp     revocation through the issuer, retirement
//   revocation_watch.cpp  the certificate in force checked for revocation (OCSP)
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/lifecycle/cancel.hpp"
#include "agent/lifecycle/identity_config.hpp"
#include "agent/lifecycle/issuer.hpp"
#include "agent/lifecycle/key_access.hpp"
#include "agent/lifecycle/lifecycle.hpp"
#include "agent/lifecycle/state.hpp"
#include "agent/lifecycle/store.hpp"

namespace keyward::lifecycle {

// Defined in view.cpp.
nlohmann::ordered_json identity_view(const IdentityConfig& cfg, const IdentityStore& store, const IdentityState& state,
                                     std::string_view issuer_kind, std::optional<int64_t> next_renewal, int64_t now);

struct Identity {
    std::shared_ptr<const IdentityConfig> cfg;
    IdentityStore store;
    std::string state_path;
    IdentityState state;
    std::unique_ptr<Issuer> issuer;
    std::string setup_error;  // why this identity cannot renew at all (reported in its view)
    std::string state_error;  // why its state.json cannot be read (retried at each use)
    bool recovered = false;   // crash reconciliation done by this instance
};

// What one attempt did, for the renew answer.
struct AttemptReport {
    std::string action;  // issued, pending, failed, not_due, interrupted
    std::string message;
};

class LifecycleImpl final : public Lifecycle {
public:
    LifecycleImpl(std::vector<std::shared_ptr<const IdentityConfig>> configs, KeyAccess keys,
                  const std::string& state_dir, IssuerKinds kinds, Clock clock);

    Result<std::string> list_json() override;
    Result<std::string> show_json(const std::string& name) override;
    Result<std::string> renew(const RenewRequest& request) override;
    Result<std::string> rollback(const std::string& name) override;
    Result<std::string> revoke(const RevokeIdentity& request) override;
    void cancel() noexcept override { cancelled_.store(true); }
    void tick() override;
    long next_tick_seconds() override;

private:
    // lifecycle.cpp: identities, state files, views, the schedule.
    int64_t unix_now() const { return clock_(); }
    Identity* find(const std::string& name);
    static Status unknown(const std::string& name);
    static std::string error_of(const Identity& id) { return id.setup_error.empty() ? id.state_error : id.setup_error; }
    double random01();
    std::string random_id();
    Status save(Identity& id);
    nlohmann::ordered_json view(Identity& id, int64_t now);
    void setup(Identity& id);
    // When the identity should next be attempted (nullopt: not by itself).
    std::optional<int64_t> due_time(Identity& id, const std::optional<Generation>& current);
    // Records a failed attempt and when to try again (a backoff, or a hold when `hold`).
    AttemptReport fail(Identity& id, const std::optional<Generation>& current, const std::string& outcome,
                       const std::string& message, int64_t now, bool hold);

    // recovery.cpp
    bool enter(Identity& id, int64_t now);
    void recover(Identity& id, int64_t now);

    // attempt.cpp
    AttemptReport attempt(Identity& id, const std::optional<Generation>& current, bool rekey, int64_t now,
                          const char* trigger);
    Result<std::string> attempt_key(Identity& id, const std::optional<Generation>& current, bool rekey, int64_t now);
    std::string new_key_name(const std::string& base, int generation, const std::vector<std::string>& refused = {});
    AttemptReport handle(Identity& id, const std::optional<Generation>& current, const IssueRequest& request,
                         IssueResult result, int64_t now);
    static void forget_request(IdentityState& st);

    // install.cpp
    AttemptReport install(Identity& id, const std::optional<Generation>& current, const IssueRequest& request,
                          const IssueResult& result);
    Result<std::string> roll_back(Identity& id, int64_t now);
    void run_due_hooks(Identity& id, int64_t now);

    // key_gc.cpp
    void destroy_due_keys(Identity& id, int64_t now);
    // Destroys `key` now (both halves, listed by the agent or not); false with the reason.
    Status destroy_key_now(Identity& id, const std::string& key);
    // A replaced key that may be compromised goes now, not after the grace period.
    void destroy_replaced_key_now(Identity& id, const std::string& key, int64_t now);

    // revocation_watch.cpp: the certificate in force checked by OCSP when due; a revocation
    // makes the identity due at once.
    void watch_revocation(Identity& id, const std::optional<Generation>& current, int64_t now);

    // revoke.cpp
    Status revoke_certificate(Identity& id, const std::string& cert_pem, const std::string& chain_pem,
                              const std::string& key, RevocationReason reason, int64_t now);
    Status retire(Identity& id, int64_t now, std::string& message);
    // After a rekey for a compromised key: the replaced certificate revoked, its key destroyed.
    void revoke_replaced(Identity& id, const Generation& replaced, int64_t now, AttemptReport& report);

    KeyAccess keys_;
    IssuerKinds kinds_;
    Clock clock_;
    std::vector<std::unique_ptr<Identity>> ids_;
    std::mt19937_64 rng_;
    CancelFlag cancelled_{false};
};

}  // namespace keyward::lifecycle
