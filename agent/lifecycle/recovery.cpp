// Entering an identity under its lock: its state as on disk and, the first time this
// instance does, the reconciliation after a crash. A crash anywhere in an attempt leaves
// `current` at a complete generation (docs/renewal.md, the two-phase swap); what is left to
// do here is to make state.json agree with it and to clear what was cut short.
#include <cstdio>

#include "agent/lifecycle/lifecycle_impl.hpp"
#include "core/log.hpp"

namespace keyward::lifecycle {
namespace {

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

}  // namespace

// False (with the reason in state_error) when the state is unreadable.
bool LifecycleImpl::enter(Identity& id, int64_t now) {
    if (!id.setup_error.empty()) return false;
    auto loaded = load_state(id.state_path);
    if (!loaded.ok()) {
        if (id.state_error != loaded.status().message)
            log::error("identity " + id.cfg->name + ": " + loaded.status().message);
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

// Finishes what a crash interrupted and cleans up torn writes. Intentions recorded for a
// switch that never happened undo themselves where they are acted on: hooks only run for
// the generation in force (run_due_hooks), a key in force is never destroyed
// (destroy_due_keys), and a key made for the attempt is reused by the next one.
void LifecycleImpl::recover(Identity& id, int64_t now) {
    IdentityState& st = id.state;
    const auto current = id.store.current();
    if (st.pending && current && !st.pending->id.empty() && current->meta.request_id == st.pending->id) {
        // The switch happened; the crash came before the state said so.
        st.pending.reset();
        st.failures = 0;
        st.held = false;
        st.next_attempt = 0;
        st.last_attempt = {
            now, "issued",
            "generation " + std::to_string(current->meta.number) + " in force (the agent stopped before recording it)"};
    } else if (st.pending && st.pending->cookie.empty()) {
        st.pending->csr_pem.clear();  // an interrupted submission: the next attempt starts over
    }
    // A key generation the crash cut short can leave a public half the agent does not list
    // as a key (its private half never made it); it would block the name for good.
    if (st.pending && st.pending->new_key && !st.pending->key.empty() && keys_.remove_orphan &&
        !keys_.describe(st.pending->key).ok()) {
        Status removed = keys_.remove_orphan(st.pending->key, id.cfg->token);
        if (removed.ok())
            log::warning("identity " + id.cfg->name + ": removed objects named " + st.pending->key +
                         " left on the device by an interrupted key generation");
        else if (removed.code != ErrorCode::no_such_key)
            log::warning("identity " + id.cfg->name + ": cannot check the device for leftovers of key " +
                         st.pending->key + ": " + removed.message);
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

}  // namespace keyward::lifecycle
