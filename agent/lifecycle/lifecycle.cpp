// The lifecycle's public calls, each under the identity's lock, and its schedule: when an
// identity is due, and when to try again after a failure.
#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>

#include "agent/lifecycle/helper_issuer.hpp"
#include "agent/lifecycle/lifecycle_impl.hpp"
#include "agent/lifecycle/notify.hpp"
#include "agent/lifecycle/schedule.hpp"
#include "core/durable_file.hpp"
#include "core/durations.hpp"
#include "core/log.hpp"
#include "core/unique_fd.hpp"
#include "pki/certificates.hpp"

namespace keyward::lifecycle {
namespace {

constexpr int64_t kMaxTickSeconds = 10;

int64_t system_now() { return static_cast<int64_t>(std::time(nullptr)); }

// Serialises the work on one identity directory across lifecycle instances (a reload builds
// the new one while the old may still finish a renewal) and processes.
class DirLock {
public:
    explicit DirLock(const std::string& dir)
            : fd_(::open((dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
        if (fd_)
            while (::flock(fd_.get(), LOCK_EX) != 0 && errno == EINTR) {}
    }

private:
    UniqueFd fd_;  // closing it releases the lock
};

// A certificate revoked for keyCompromise, or for no reason given, may mean its key is
// compromised: the certificate that replaces it is for a new key.
bool key_suspect(const IdentityState& st, const std::optional<Generation>& current) {
    if (!st.revoked || !current || !revocation_is_for(*st.revoked, current->cert_pem)) return false;
    const std::string& r = st.revoked->reason;
    return r == "keyCompromise" || r == "unspecified" || r == "unknown" || r.empty();
}

std::optional<int64_t> current_not_after(const std::optional<Generation>& current) {
    if (!current) return std::nullopt;
    auto info = pki::describe_pem(current->cert_pem);
    if (!info.ok()) return std::nullopt;
    return info->not_after;
}

}  // namespace

std::string identity_dir(const IdentityConfig& identity, const std::string& state_dir) {
    return identity.dir.empty() ? state_dir + "/identities/" + identity.name : identity.dir;
}

LifecycleImpl::LifecycleImpl(std::vector<std::shared_ptr<const IdentityConfig>> configs, KeyAccess keys,
                             const std::string& state_dir, IssuerKinds kinds, Clock clock)
        : keys_(std::move(keys)),
          kinds_(std::move(kinds)),
          clock_(clock ? std::move(clock) : Clock(system_now)),
          rng_(std::random_device{}()) {
    for (auto& cfg : configs) {
        const std::string dir = identity_dir(*cfg, state_dir);
        auto id = std::make_unique<Identity>(
            Identity{cfg, IdentityStore(dir), dir + "/state.json", {}, nullptr, {}, {}, false});
        setup(*id);
        ids_.push_back(std::move(id));
    }
}

Result<std::string> LifecycleImpl::list_json() {
    const int64_t now = unix_now();
    nlohmann::ordered_json out;
    out["identities"] = nlohmann::ordered_json::array();
    for (auto& id : ids_) out["identities"].push_back(view(*id, now));
    return out.dump(2) + "\n";
}

Result<std::string> LifecycleImpl::show_json(const std::string& name) {
    Identity* id = find(name);
    if (!id) return unknown(name);
    return view(*id, unix_now()).dump(2) + "\n";
}

Result<std::string> LifecycleImpl::renew(const RenewRequest& request) {
    Identity* id = find(request.identity);
    if (!id) return unknown(request.identity);
    const int64_t now = unix_now();
    AttemptReport report;
    DirLock lock(id->store.dir());
    if (!enter(*id, now)) {
        report = {"failed", error_of(*id)};
    } else {
        if (id->state.retired) {  // an enroll brings a retired identity back
            id->state.retired = false;
            id->state.held = false;
            id->state.next_attempt = 0;
            save(*id);
        }
        const auto current = id->store.current();
        const auto due = due_time(*id, current);
        if (cancelled_.load()) {
            report = {"interrupted", "the agent is stopping"};
        } else if (current && !request.now && (!due || *due > now)) {
            report = {"not_due", due ? "not due until " + format_time(*due) + "; use --now to renew anyway"
                                     : "not due; use --now to renew anyway"};
        } else {
            const bool suspect = key_suspect(id->state, current);
            report = attempt(*id, current, request.rekey || request.compromised || suspect, now, "requested");
            if (current && report.action == "issued") {
                if (request.compromised) revoke_replaced(*id, *current, now, report);
                else if (suspect) destroy_replaced_key_now(*id, current->meta.key, now);
            }
        }
    }
    auto out = view(*id, unix_now());
    out["result"] = {{"action", report.action}, {"message", report.message}};
    return out.dump(2) + "\n";
}

Result<std::string> LifecycleImpl::rollback(const std::string& name) {
    Identity* id = find(name);
    if (!id) return unknown(name);
    const int64_t now = unix_now();
    DirLock lock(id->store.dir());
    if (!enter(*id, now)) return Status{ErrorCode::internal, error_of(*id)};
    return roll_back(*id, now);
}

Result<std::string> LifecycleImpl::revoke(const RevokeIdentity& request) {
    Identity* id = find(request.identity);
    if (!id) return unknown(request.identity);
    const auto reason = request.reason.empty() ? std::optional(RevocationReason::unspecified)
                                               : revocation_reason_from_name(request.reason);
    if (!reason)
        return Status{ErrorCode::invalid_argument,
                      "unknown revocation reason \"" + request.reason + "\" (one of " + kRevocationReasonNames + ")"};
    const int64_t now = unix_now();
    DirLock lock(id->store.dir());
    if (!enter(*id, now)) return Status{ErrorCode::internal, error_of(*id)};
    if (!id->issuer) return Status{ErrorCode::invalid_argument, "identity " + id->cfg->name + ": " + error_of(*id)};
    const auto current = id->store.current();
    std::string message;
    if (current) {
        Status s = revoke_certificate(*id, current->cert_pem, current->chain_pem, current->meta.key, *reason, now);
        if (!s.ok()) return s;
        message = "certificate revoked (" + std::string(revocation_reason_name(*reason)) + ")";
    } else if (!request.retire) {
        return Status{ErrorCode::invalid_argument, "identity " + id->cfg->name + " has no certificate to revoke"};
    }
    if (request.retire) {
        Status s = retire(*id, now, message);
        if (!s.ok()) return s;
    } else {
        // The operator decides what comes next: automatic renewal holds until `keyward
        // renew NAME --now` (a new key when the key may be compromised).
        IdentityState& st = id->state;
        st.held = true;
        st.next_attempt = now + hold_delay(id->cfg->policy, random01());
        st.last_attempt = {now, "revoked", message};
        save(*id);
    }
    auto out = view(*id, unix_now());
    out["result"] = {{"action", request.retire ? "retired" : "revoked"}, {"message", message}};
    return out.dump(2) + "\n";
}

void LifecycleImpl::tick() {
    for (auto& id : ids_) {
        if (cancelled_.load()) return;
        const int64_t now = unix_now();
        DirLock lock(id->store.dir());
        if (!enter(*id, now)) continue;
        run_due_hooks(*id, now);
        destroy_due_keys(*id, now);
        const auto current = id->store.current();
        watch_revocation(*id, current, now);
        const auto due = due_time(*id, current);
        if (due && *due <= now) {
            const bool suspect = key_suspect(id->state, current);
            const auto report = attempt(*id, current, (id->cfg->rekey && current) || suspect, now, "scheduled");
            if (suspect && report.action == "issued") destroy_replaced_key_now(*id, current->meta.key, now);
        }
        if (!id->cfg->notify.empty()) notify_changes(*id->cfg, id->store.dir(), view(*id, unix_now()), unix_now());
    }
}

long LifecycleImpl::next_tick_seconds() {
    const int64_t now = unix_now();
    int64_t next = now + 3600;
    for (auto& id : ids_) {
        if (!error_of(*id).empty()) continue;
        if (auto due = due_time(*id, id->store.current())) next = std::min(next, *due);
        for (const auto& d : id->state.destroy) next = std::min(next, d.after);
        if (id->cfg->revocation_check_interval > 0 && id->store.current())
            next = std::min(next, std::max(id->state.check.next, now + 1));
    }
    // The agent sleeps this long even when a client request (enroll, renew, rollback)
    // changes the plan in between: stay within kMaxTickSeconds so such a change is
    // acted on soon (short-lived certificates, grace periods).
    return static_cast<long>(std::clamp<int64_t>(next - now, 1, kMaxTickSeconds));
}

Identity* LifecycleImpl::find(const std::string& name) {
    for (auto& id : ids_)
        if (id->cfg->name == name) return id.get();
    return nullptr;
}

Status LifecycleImpl::unknown(const std::string& name) {
    return {ErrorCode::invalid_argument, "no identity named \"" + name + "\" (keyward identities list)"};
}

double LifecycleImpl::random01() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

std::string LifecycleImpl::random_id() {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng_()));
    return buf;
}

Status LifecycleImpl::save(Identity& id) {
    Status s = save_state(id.state_path, id.state);
    if (!s.ok()) log::error("identity " + id.cfg->name + ": cannot save its state: " + s.message);
    return s;
}

nlohmann::ordered_json LifecycleImpl::view(Identity& id, int64_t now) {
    // The state as on disk (another instance may have written it); no lock: files are
    // replaced atomically, and a view must not wait for a renewal.
    if (id.setup_error.empty()) {
        auto loaded = load_state(id.state_path);
        if (loaded.ok()) id.state = std::move(loaded.value());
    }
    std::optional<int64_t> next;
    if (error_of(id).empty()) next = due_time(id, id.store.current());
    auto v = identity_view(*id.cfg, id.store, id.state, id.issuer ? id.issuer->kind() : id.cfg->issuer.kind, next, now);
    if (!error_of(id).empty()) v["error"] = error_of(id);
    return v;
}

// The directory and the issuer; nothing that touches state another instance may own.
void LifecycleImpl::setup(Identity& id) {
    const std::string& name = id.cfg->name;
    if (Status s = id.store.prepare(); !s.ok()) {
        id.setup_error = s.message;
        log::error("identity " + name + ": " + s.message);
        return;
    }
    auto loaded = load_state(id.state_path);  // for views until the first locked use
    if (loaded.ok()) id.state = std::move(loaded.value());
    const std::string issuer_dir = id.store.dir() + "/issuer";
    // Best effort: an issuer without state never looks there, one with state fails on its own write.
    files::make_dirs(issuer_dir, 0700);
    id.issuer = make_issuer(kinds_, id.cfg, issuer_dir);
    if (!id.issuer) id.setup_error = "issuer kind \"" + id.cfg->issuer.kind + "\" is not available in this build";
}

std::optional<int64_t> LifecycleImpl::due_time(Identity& id, const std::optional<Generation>& current) {
    const IdentityState& st = id.state;
    if (st.retired) return std::nullopt;
    // Revoked by the CA (not on our request, which holds): replaced at once, after a backoff
    // when that fails.
    if (current && st.revoked && st.revoked->source != "requested" && revocation_is_for(*st.revoked, current->cert_pem))
        return st.next_attempt;
    if (st.pending && !st.pending->cookie.empty()) return st.next_attempt;
    if (!current) {
        if (!id.cfg->auto_enroll && st.next_attempt == 0) return std::nullopt;
        return st.next_attempt;
    }
    auto info = pki::describe_pem(current->cert_pem);
    if (!info.ok()) return std::max<int64_t>(st.next_attempt, 0);  // unreadable certificate: replace it
    const double spread = spread_from(info->serial.data(), info->serial.size());
    const int64_t planned = renewal_time(id.cfg->policy, info->not_before, info->not_after, spread);
    // A backoff or hold delays the plan; it never brings it forward (a failed early
    // `renew --now` must not start automatic attempts before the schedule).
    return std::max(planned, st.next_attempt);
}

AttemptReport LifecycleImpl::fail(Identity& id, const std::optional<Generation>& current, const std::string& outcome,
                                  const std::string& message, int64_t now, bool hold) {
    IdentityState& st = id.state;
    st.failures += 1;
    st.held = hold;
    const int64_t delay = hold ? hold_delay(id.cfg->policy, random01())
                               : retry_delay(id.cfg->policy, st.failures, now, current_not_after(current), random01());
    st.next_attempt = now + delay;
    st.last_attempt = {now, outcome, message};
    save(id);
    log::warning("identity " + id.cfg->name + ": " + outcome + ": " + message + "; next attempt at " +
                 format_time(st.next_attempt) + (current ? "; the current certificate stays in force" : ""));
    return {"failed", message};
}

std::unique_ptr<Lifecycle> make_lifecycle(std::vector<std::shared_ptr<const IdentityConfig>> identities, KeyAccess keys,
                                          const std::string& state_dir, IssuerKinds kinds, Clock clock) {
    return std::make_unique<LifecycleImpl>(std::move(identities), std::move(keys), state_dir, std::move(kinds),
                                           std::move(clock));
}

}  // namespace keyward::lifecycle
