// Replaced keys are destroyed `grace_period` after the switch (rollback is possible until
// then), never while they are in force or in use by an attempt.
#include "agent/lifecycle/lifecycle_impl.hpp"
#include "core/log.hpp"

namespace keyward::lifecycle {

Status LifecycleImpl::destroy_key_now(Identity& id, const std::string& key) {
    Status s = keys_.destroy(key);
    if (s.code == ErrorCode::no_such_key && keys_.remove_orphan) s = keys_.remove_orphan(key, id.cfg->token);
    return s;
}

void LifecycleImpl::destroy_replaced_key_now(Identity& id, const std::string& key, int64_t now) {
    for (auto& d : id.state.destroy)
        if (d.key == key) d.after = now;
    save(id);
    destroy_due_keys(id, now);
}

void LifecycleImpl::destroy_due_keys(Identity& id, int64_t now) {
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
        // Also when the agent no longer lists it (its private half went some other way):
        // what is left on the device under that name (a public half) still goes.
        Status s = destroy_key_now(id, it->key);
        if (s.ok() || s.code == ErrorCode::no_such_key) {
            log::notice("identity " + id.cfg->name + ": " +
                        (s.ok() ? "destroyed the replaced key " + it->key + " after its grace period"
                                : "the replaced key " + it->key + " was already gone from the device"));
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

}  // namespace keyward::lifecycle
