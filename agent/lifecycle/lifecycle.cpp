// The lifecycle: per identity, decide when to renew, run one attempt (key, CSR on the
// device, issuer, validation), install the result with the two-phase swap, run hooks,
// destroy replaced keys after their grace period, and remember all of it in state.json.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>

#include "pki/certificates.hpp"
#include "core/durations.hpp"
#include "agent/lifecycle/helper_issuer.hpp"
#include "agent/lifecycle/hooks.hpp"
#include "agent/lifecycle/identity_config.hpp"
#include "agent/lifecycle/schedule.hpp"
#include "agent/lifecycle/state.hpp"
#include "agent/lifecycle/store.hpp"
#include "core/log.hpp"
#include "ipc/keyref.hpp"

namespace keyward::lifecycle {

// Defined in view.cpp.
nlohmann::ordered_json identity_view(const IdentityConfig& cfg, const IdentityStore& store, const IdentityState& state,
                                     std::string_view issuer_kind, std::optional<int64_t> next_renewal, int64_t now);

namespace {

constexpr int64_t kMaxTickSeconds = 10;

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

std::string fingerprint_hash(const std::string& text) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : text) {
        h ^= c;
        h *= 1099511628211ull;
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

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

// Serialises the work on one identity directory across lifecycle instances (a reload builds
// the new one while the old may still finish a renewal) and processes.
class DirLock {
public:
    explicit DirLock(const std::string& dir) : fd_(::open((dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
        if (fd_ >= 0)
            while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
            }
    }
    ~DirLock() {
        if (fd_ >= 0) ::close(fd_);
    }
    DirLock(const DirLock&) = delete;
    DirLock& operator=(const DirLock&) = delete;

private:
    int fd_;
};

// What one attempt did, for the renew answer.
struct AttemptReport {
    std::string action;  // issued, pending, failed, not_due
    std::string message;
};

class LifecycleImpl final : public Lifecycle {
public:
    LifecycleImpl(std::vector<std::shared_ptr<const IdentityConfig>> configs, KeyAccess keys, const std::string& state_dir,
                  IssuerKinds kinds)
        : keys_(std::move(keys)), kinds_(std::move(kinds)), rng_(std::random_device{}()) {
        const int64_t now = unix_now();
        for (auto& cfg : configs) {
            const std::string dir = cfg->dir.empty() ? state_dir + "/identities/" + cfg->name : cfg->dir;
            auto id = std::make_unique<Identity>(Identity{cfg, IdentityStore(dir), dir + "/state.json", {}, nullptr, {}, {}, false});
            setup(*id, now);
            ids_.push_back(std::move(id));
        }
    }

    Result<std::string> list_json() override {
        const int64_t now = unix_now();
        nlohmann::ordered_json out;
        out["identities"] = nlohmann::ordered_json::array();
        for (auto& id : ids_) out["identities"].push_back(view(*id, now));
        return out.dump(2) + "\n";
    }

    Result<std::string> show_json(const std::string& name) override {
        Identity* id = find(name);
        if (!id) return unknown(name);
        return view(*id, unix_now()).dump(2) + "\n";
    }

    Result<std::string> renew(const RenewRequest& request) override {
        Identity* id = find(request.identity);
        if (!id) return unknown(request.identity);
        const int64_t now = unix_now();
        AttemptReport report;
        DirLock lock(id->store.dir());
        if (!enter(*id, now)) {
            report = {"failed", error_of(*id)};
        } else {
            const auto current = id->store.current();
            const auto due = due_time(*id, current, now);
            if (cancelled_.load()) {
                report = {"interrupted", "the agent is stopping"};
            } else if (current && !request.now && (!due || *due > now)) {
                report = {"not_due", due ? "not due until " + format_time(*due) + "; use --now to renew anyway"
                                         : "not due; use --now to renew anyway"};
            } else {
                report = attempt(*id, current, request.rekey, now, "requested");
            }
        }
        auto out = view(*id, unix_now());
        out["result"] = {{"action", report.action}, {"message", report.message}};
        return out.dump(2) + "\n";
    }

    Result<std::string> rollback(const std::string& name) override {
        Identity* id = find(name);
        if (!id) return unknown(name);
        const int64_t now = unix_now();
        DirLock lock(id->store.dir());
        if (!enter(*id, now)) return Status{ErrorCode::internal, error_of(*id)};
        const auto current = id->store.current();
        const auto previous = id->store.previous();
        if (!current || !previous || previous->meta.number == current->meta.number)
            return Status{ErrorCode::invalid_argument, "identity " + name + " has no previous generation to roll back to"};
        auto info = pki::describe_pem(previous->cert_pem);
        if (!info.ok()) return Status{ErrorCode::internal, "the previous certificate is unreadable: " + info.status().message};
        if (info->not_after <= now)
            return Status{ErrorCode::invalid_argument,
                          "the previous certificate expired at " + format_time(info->not_after) + "; renew instead"};
        if (!keys_.describe(previous->meta.key).ok())
            return Status{ErrorCode::invalid_argument, "the previous generation's key " + previous->meta.key +
                                                           " no longer exists (destroyed after its grace period)"};
        IdentityState& st = id->state;
        // The key we leave is destroyed after the grace period unless we come back to it.
        st.destroy.erase(std::remove_if(st.destroy.begin(), st.destroy.end(),
                                        [&](const KeyToDestroy& d) { return d.key == previous->meta.key; }),
                         st.destroy.end());
        if (current->meta.key != previous->meta.key)
            st.destroy.push_back({current->meta.key, now + id->cfg->grace_period});
        st.hooks_due = previous->meta.number;
        if (Status s = save(*id); !s.ok()) return s;
        if (Status s = id->store.switch_to(previous->meta.number, current->meta.number); !s.ok()) return s;
        st.pending.reset();
        st.failures = 0;
        // An administrator rolled back on purpose: do not renew it away at the next tick.
        const int64_t hold_until = std::min(now + id->cfg->policy.retry_max,
                                            std::max(now + 1, info->not_after - id->cfg->policy.retry_min));
        st.held = true;
        st.next_attempt = hold_until;
        st.last_attempt = {now, "rollback",
                           "rolled back from generation " + std::to_string(current->meta.number) + " to " +
                               std::to_string(previous->meta.number) + "; automatic renewal resumes at " +
                               format_time(hold_until)};
        save(*id);
        log::notice("identity " + name + ": " + st.last_attempt.message);
        run_due_hooks(*id, now);
        return view(*id, unix_now()).dump(2) + "\n";
    }

    void cancel() noexcept override { cancelled_.store(true); }

    void tick() override {
        for (auto& id : ids_) {
            if (cancelled_.load()) return;
            const int64_t now = unix_now();
            DirLock lock(id->store.dir());
            if (!enter(*id, now)) continue;
            run_due_hooks(*id, now);
            destroy_due_keys(*id, now);
            const auto current = id->store.current();
            const auto due = due_time(*id, current, now);
            if (due && *due <= now) attempt(*id, current, id->cfg->rekey && current.has_value(), now, "scheduled");
        }
    }

    long next_tick_seconds() override {
        const int64_t now = unix_now();
        int64_t next = now + 3600;
        for (auto& id : ids_) {
            if (!error_of(*id).empty()) continue;
            if (auto due = due_time(*id, id->store.current(), now)) next = std::min(next, *due);
            for (const auto& d : id->state.destroy) next = std::min(next, d.after);
        }
        // The agent sleeps this long even when a client request (enroll, renew, rollback)
        // changes the plan in between: stay within kMaxTickSeconds so such a change is
        // acted on soon (short-lived certificates, grace periods).
        return static_cast<long>(std::clamp<int64_t>(next - now, 1, kMaxTickSeconds));
    }

private:
    Identity* find(const std::string& name) {
        for (auto& id : ids_)
            if (id->cfg->name == name) return id.get();
        return nullptr;
    }

    static Status unknown(const std::string& name) {
        return {ErrorCode::invalid_argument, "no identity named \"" + name + "\" (keyward identities list)"};
    }

    double random01() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

    std::string random_id() {
        char buf[17];
        std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng_()));
        return buf;
    }

    Status save(Identity& id) {
        Status s = save_state(id.state_path, id.state);
        if (!s.ok()) log::error("identity " + id.cfg->name + ": cannot save its state: " + s.message);
        return s;
    }

    nlohmann::ordered_json view(Identity& id, int64_t now) {
        // The state as on disk (another instance may have written it); no lock: files are
        // replaced atomically, and a view must not wait for a renewal.
        if (id.setup_error.empty()) {
            auto loaded = load_state(id.state_path);
            if (loaded.ok()) id.state = std::move(loaded.value());
        }
        std::optional<int64_t> next;
        if (error_of(id).empty()) next = due_time(id, id.store.current(), now);
        auto v = identity_view(*id.cfg, id.store, id.state, id.issuer ? id.issuer->kind() : id.cfg->issuer.kind, next, now);
        if (!error_of(id).empty()) v["error"] = error_of(id);
        return v;
    }

    static std::string error_of(const Identity& id) { return id.setup_error.empty() ? id.state_error : id.setup_error; }

    // The directory and the issuer; nothing that touches state another instance may own.
    void setup(Identity& id, int64_t now) {
        (void)now;
        const std::string& name = id.cfg->name;
        if (Status s = id.store.prepare(); !s.ok()) {
            id.setup_error = s.message;
            log::error("identity " + name + ": " + s.message);
            return;
        }
        auto loaded = load_state(id.state_path);  // for views until the first locked use
        if (loaded.ok()) id.state = std::move(loaded.value());
        const std::string issuer_dir = id.store.dir() + "/issuer";
        files_make_private(issuer_dir);
        id.issuer = make_issuer(kinds_, id.cfg, issuer_dir);
        if (!id.issuer) id.setup_error = "issuer kind \"" + id.cfg->issuer.kind + "\" is not available in this build";
    }

    // Under the identity's lock: the state as on disk and, the first time, reconciliation
    // after a crash. False (with the reason in state_error) when the state is unreadable.
    bool enter(Identity& id, int64_t now) {
        if (!id.setup_error.empty()) return false;
        auto loaded = load_state(id.state_path);
        if (!loaded.ok()) {
            if (id.state_error != loaded.status().message) log::error("identity " + id.cfg->name + ": " + loaded.status().message);
            id.state_error = loaded.status().message;
            return false;
        }
        id.state_error.clear();
        id.state = std::move(loaded.value());
        if (!id.recovered) {
            recover(id, now);
            id.recovered = true;
        }
        return true;
    }

    // Finishes what a crash interrupted and cleans up torn writes.
    void recover(Identity& id, int64_t now) {
        IdentityState& st = id.state;
        const auto current = id.store.current();
        if (st.pending && current && !st.pending->id.empty() && current->meta.request_id == st.pending->id) {
            // The switch happened; the crash came before the state said so.
            st.pending.reset();
            st.failures = 0;
            st.held = false;
            st.next_attempt = 0;
            st.last_attempt = {now, "issued", "generation " + std::to_string(current->meta.number) +
                                                  " in force (the agent stopped before recording it)"};
        } else if (st.pending && st.pending->cookie.empty()) {
            st.pending->csr_pem.clear();  // an interrupted submission: the next attempt starts over
        }
        const std::string fp = fingerprint_hash(id.cfg->fingerprint);
        if (!st.config_fingerprint.empty() && st.config_fingerprint != fp && st.held) {
            // The configuration changed: a rejection or misconfiguration may be fixed.
            st.held = false;
            st.next_attempt = 0;
            st.failures = 0;
        }
        st.config_fingerprint = fp;
        id.store.prune();
        save(id);
    }

    static void files_make_private(const std::string& dir);

    // When the identity should next be attempted (nullopt: not by itself).
    std::optional<int64_t> due_time(Identity& id, const std::optional<Generation>& current, int64_t now) {
        (void)now;
        const IdentityState& st = id.state;
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

    std::optional<int64_t> current_not_after(const std::optional<Generation>& current) {
        if (!current) return std::nullopt;
        auto info = pki::describe_pem(current->cert_pem);
        if (!info.ok()) return std::nullopt;
        return info->not_after;
    }

    AttemptReport fail(Identity& id, const std::optional<Generation>& current, const std::string& outcome,
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

    // "web.3", or "web.3-2"... when taken (known to the agent, or refused by the token).
    std::string new_key_name(const std::string& base, int generation, const std::vector<std::string>& refused = {}) {
        std::string name = base + "." + std::to_string(generation);
        auto taken = [&](const std::string& n) {
            return keys_.describe(n).ok() || std::find(refused.begin(), refused.end(), n) != refused.end();
        };
        for (int k = 2; taken(name); ++k) name = base + "." + std::to_string(generation) + "-" + std::to_string(k);
        return name;
    }

    // Chooses (and if needed makes) the key of this attempt; records it before making it.
    Result<std::string> attempt_key(Identity& id, const std::optional<Generation>& current, bool rekey, int64_t now) {
        IdentityState& st = id.state;
        const bool reuse = st.pending && st.pending->new_key && !st.pending->key.empty() &&
                           (!current || st.pending->key != current->meta.key) && keys_.describe(st.pending->key).ok();
        std::string key;
        bool make = false;
        if (current && !rekey) {
            key = current->meta.key;
        } else if (reuse) {
            key = st.pending->key;
        } else if (!current) {
            key = id.cfg->key;
            make = !keys_.describe(key).ok();
        } else {
            key = new_key_name(id.cfg->key, id.store.next_number());
            make = true;
        }
        const bool new_key = make || (reuse && st.pending->new_key);
        // A key made for an earlier attempt that this one does not use never came into
        // force: destroy it rather than leave it on the device.
        if (st.pending && st.pending->new_key && !st.pending->key.empty() && st.pending->key != key &&
            (!current || st.pending->key != current->meta.key))
            st.destroy.push_back({st.pending->key, now});
        st.pending = PendingRequest{random_id(), key, new_key, "", "", now};
        std::vector<std::string> refused;
        while (make) {
            save(id);  // remember the key before it exists, so a crash cannot orphan it
            log::notice("identity " + id.cfg->name + ": generating key " + key + " (" + id.cfg->key_type + ")");
            auto made = keys_.generate(key, id.cfg->key_type, id.cfg->token);
            if (made.ok()) break;
            // The token has an object by that name the agent does not list (e.g. a generation
            // cut short by a crash): a renewal key can take another name.
            if (made.status().code == ErrorCode::key_exists && current && refused.size() < 5) {
                log::warning("identity " + id.cfg->name + ": " + made.status().message + "; using another name");
                refused.push_back(key);
                key = new_key_name(id.cfg->key, id.store.next_number(), refused);
                st.pending->key = key;
                continue;
            }
            return Status{made.status().code, "cannot generate key " + key + ": " + made.status().message};
        }
        return key;
    }

    AttemptReport attempt(Identity& id, const std::optional<Generation>& current, bool rekey, int64_t now,
                          const char* trigger) {
        IdentityState& st = id.state;
        IssueRequest request;
        request.identity = id.cfg->name;
        request.keys = &keys_;
        request.cancel = &cancelled_;
        if (current) {
            request.current_cert_pem = current->cert_pem;
            request.current_key = current->meta.key;
        }
        const bool polling = st.pending && !st.pending->cookie.empty() && !st.pending->csr_pem.empty() &&
                             keys_.describe(st.pending->key).ok();
        log::info("identity " + id.cfg->name + ": " + (polling ? "polling the CA" : std::string(trigger) + " renewal") +
                  (current ? "" : " (enrollment)"));
        IssueResult result;
        if (polling) {
            request.key = st.pending->key;
            request.csr_pem = st.pending->csr_pem;
            request.cookie = st.pending->cookie;
            result = id.issuer->poll(request);
        } else {
            auto key = attempt_key(id, current, rekey, now);
            if (!key.ok()) return fail(id, current, "failed", key.status().message, now, false);
            auto info = keys_.describe(key.value());
            if (!info.ok()) return fail(id, current, "failed", info.status().message, now, false);
            pki::CsrRequest csr_request;
            csr_request.subject = id.cfg->subject_attributes;
            csr_request.sans = id.cfg->san_values;
            csr_request.key_schemes = info->schemes;
            const std::string key_name = key.value();
            const pki::SignFn sign = [this, key_name](Scheme scheme, std::span<const uint8_t> digest) {
                return keys_.sign(key_name, scheme, digest);
            };
            auto csr = pki::build_csr(csr_request, info->spki, sign);
            if (!csr.ok()) return fail(id, current, "failed", "cannot make the CSR: " + csr.status().message, now, false);
            st.pending->csr_pem = csr.value();
            save(id);
            request.key = key_name;
            request.csr_pem = csr.value();
            result = id.issuer->submit(request);
        }
        if (cancelled_.load() && result.kind != IssueResult::Kind::issued) {
            // Not a failure of the CA's: record nothing, exactly as if the agent had died here.
            log::notice("identity " + id.cfg->name + ": attempt interrupted, the agent is stopping");
            return {"interrupted", "the agent is stopping"};
        }
        return handle(id, current, request, std::move(result), now);
    }

    AttemptReport handle(Identity& id, const std::optional<Generation>& current, const IssueRequest& request,
                         IssueResult result, int64_t now) {
        IdentityState& st = id.state;
        switch (result.kind) {
            case IssueResult::Kind::issued: return install(id, current, request, result);
            case IssueResult::Kind::pending: {
                const int64_t delay = result.retry_after.count() > 0 ? result.retry_after.count() : id.cfg->policy.retry_min;
                st.pending->cookie = result.cookie;
                st.held = false;
                st.next_attempt = now + delay;
                st.last_attempt = {now, "pending", result.message + "; polling at " + format_time(st.next_attempt)};
                save(id);
                log::notice("identity " + id.cfg->name + ": " + st.last_attempt.message);
                return {"pending", st.last_attempt.message};
            }
            case IssueResult::Kind::rejected:
            case IssueResult::Kind::misconfigured:
                forget_request(st);
                return fail(id, current, std::string(issue_kind_name(result.kind)), result.message, now, true);
            case IssueResult::Kind::unreachable:
                return fail(id, current, "unreachable", result.message, now, false);
        }
        return fail(id, current, "failed", "unknown answer from the issuer", now, false);
    }

    // The CA will not answer this request again: keep only a key made for it (for reuse).
    static void forget_request(IdentityState& st) {
        if (!st.pending) return;
        if (!st.pending->new_key) {
            st.pending.reset();
            return;
        }
        st.pending->cookie.clear();
        st.pending->csr_pem.clear();
    }

    AttemptReport install(Identity& id, const std::optional<Generation>& current, const IssueRequest& request,
                          const IssueResult& result) {
        IdentityState& st = id.state;
        const int64_t now = unix_now();
        auto info = keys_.describe(request.key);
        if (!info.ok()) return fail(id, current, "failed", info.status().message, now, false);
        pki::Expectations expect;
        expect.trust_anchors = id.cfg->trust_anchors;
        expect.spki = info->spki;
        expect.require_client_auth = id.cfg->require_client_auth;
        expect.sans = id.cfg->san_values;
        expect.now = now;
        auto issued = pki::validate_issued(result.cert_pem, result.chain_pem, expect);
        if (!issued.ok()) {
            forget_request(st);
            return fail(id, current, "invalid", "the CA's certificate was refused: " + issued.status().message, now, false);
        }

        GenerationMeta meta;
        meta.number = id.store.next_number();
        meta.key = request.key;
        meta.request_id = st.pending ? st.pending->id : random_id();
        meta.created = now;
        meta.reason = !current ? "enroll" : (current->meta.key != request.key ? "rekey" : "renew");
        const std::string keyref = encode_key_reference_pem(KeyReference{request.key, info->spki});
        if (Status s = id.store.write_generation(meta, issued->cert_pem, issued->chain_pem, keyref); !s.ok())
            return fail(id, current, "failed", "cannot store the new certificate: " + s.message, now, false);

        // Intentions first (destroy the replaced key later, run hooks), then the one switch.
        if (current && current->meta.key != request.key)
            st.destroy.push_back({current->meta.key, now + id.cfg->grace_period});
        st.hooks_due = meta.number;
        if (Status s = save(id); !s.ok()) return fail(id, current, "failed", s.message, now, false);
        if (Status s = id.store.switch_to(meta.number, current ? current->meta.number : 0); !s.ok())
            return fail(id, current, "failed", "cannot switch to the new certificate: " + s.message, now, false);

        st.pending.reset();
        st.failures = 0;
        st.held = false;
        st.next_attempt = 0;
        const std::string message = std::string(meta.reason == "enroll" ? "enrolled" : meta.reason == "rekey" ? "renewed with a new key" : "renewed") +
                                    ": generation " + std::to_string(meta.number) + ", serial " + issued->info.serial +
                                    ", valid until " + format_time(issued->info.not_after);
        st.last_attempt = {now, "issued", message};
        save(id);
        id.store.prune();
        log::notice("identity " + id.cfg->name + ": " + message);
        run_due_hooks(id, now);
        if (st.hooks.outcome == "failed") return {"issued", message + "; but " + st.hooks.message};
        return {"issued", message};
    }

    void run_due_hooks(Identity& id, int64_t now) {
        IdentityState& st = id.state;
        if (st.hooks_due == 0) return;
        const auto current = id.store.current();
        if (!current || current->meta.number != st.hooks_due) {
            st.hooks_due = 0;  // that generation never came into force
            save(id);
            return;
        }
        st.hooks = run_hooks(*id.cfg, id.store.current_files(), current->meta.key, now);
        st.hooks_due = 0;
        save(id);
    }

    void destroy_due_keys(Identity& id, int64_t now) {
        IdentityState& st = id.state;
        if (st.destroy.empty()) return;
        const auto current = id.store.current();
        bool changed = false;
        for (auto it = st.destroy.begin(); it != st.destroy.end();) {
            const bool in_use = (current && current->meta.key == it->key) || (st.pending && st.pending->key == it->key);
            if (in_use) {
                it = st.destroy.erase(it);  // in force again (rollback, or a switch that never happened)
                changed = true;
                continue;
            }
            if (it->after > now) {
                ++it;
                continue;
            }
            Status s = keys_.destroy(it->key);
            if (s.ok() || s.code == ErrorCode::no_such_key) {
                log::notice("identity " + id.cfg->name + ": destroyed the replaced key " + it->key +
                            " after its grace period");
                it = st.destroy.erase(it);
            } else {
                log::warning("identity " + id.cfg->name + ": cannot destroy the replaced key " + it->key + ": " +
                             s.message + "; trying again in an hour");
                it->after = now + 3600;
                ++it;
            }
            changed = true;
        }
        if (changed) save(id);
    }

    KeyAccess keys_;
    IssuerKinds kinds_;
    std::vector<std::unique_ptr<Identity>> ids_;
    std::mt19937_64 rng_;
    CancelFlag cancelled_{false};
};

void LifecycleImpl::files_make_private(const std::string& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
}

}  // namespace

std::unique_ptr<Lifecycle> make_lifecycle(std::vector<std::shared_ptr<const IdentityConfig>> identities,
                                          KeyAccess keys, const std::string& state_dir,
                                          IssuerKinds kinds) {
    return std::make_unique<LifecycleImpl>(std::move(identities), std::move(keys), state_dir, std::move(kinds));
}

}  // namespace keyward::lifecycle
