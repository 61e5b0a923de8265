// Putting a certificate in force: the issuer's answer validated, the new generation written
// beside the old one, the intentions recorded, then the one switch (docs/renewal.md, the
// two-phase swap); the hooks after it; and rollback, the same switch backwards.
#include <algorithm>

#include "agent/lifecycle/hooks.hpp"
#include "agent/lifecycle/lifecycle_impl.hpp"
#include "core/durations.hpp"
#include "core/log.hpp"
#include "ipc/keyref.hpp"
#include "pki/certificates.hpp"

namespace keyward::lifecycle {

AttemptReport LifecycleImpl::install(Identity& id, const std::optional<Generation>& current,
                                     const IssueRequest& request, const IssueResult& result) {
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
    const std::string message = std::string(meta.reason == "enroll"  ? "enrolled"
                                            : meta.reason == "rekey" ? "renewed with a new key"
                                                                     : "renewed") +
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

Result<std::string> LifecycleImpl::roll_back(Identity& id, int64_t now) {
    const std::string& name = id.cfg->name;
    const auto current = id.store.current();
    const auto previous = id.store.previous();
    if (!current || !previous || previous->meta.number == current->meta.number)
        return Status{ErrorCode::invalid_argument, "identity " + name + " has no previous generation to roll back to"};
    auto info = pki::describe_pem(previous->cert_pem);
    if (!info.ok())
        return Status{ErrorCode::internal, "the previous certificate is unreadable: " + info.status().message};
    if (info->not_after <= now)
        return Status{ErrorCode::invalid_argument,
                      "the previous certificate expired at " + format_time(info->not_after) + "; renew instead"};
    if (!keys_.describe(previous->meta.key).ok())
        return Status{ErrorCode::invalid_argument, "the previous generation's key " + previous->meta.key +
                                                       " no longer exists (destroyed after its grace period)"};
    IdentityState& st = id.state;
    // The key we leave is destroyed after the grace period unless we come back to it.
    st.destroy.erase(std::remove_if(st.destroy.begin(), st.destroy.end(),
                                    [&](const KeyToDestroy& d) { return d.key == previous->meta.key; }),
                     st.destroy.end());
    if (current->meta.key != previous->meta.key) st.destroy.push_back({current->meta.key, now + id.cfg->grace_period});
    st.hooks_due = previous->meta.number;
    if (Status s = save(id); !s.ok()) return s;
    if (Status s = id.store.switch_to(previous->meta.number, current->meta.number); !s.ok()) return s;
    st.pending.reset();
    st.failures = 0;
    // An administrator rolled back on purpose: do not renew it away at the next tick.
    const int64_t hold_until =
        std::min(now + id.cfg->policy.retry_max, std::max(now + 1, info->not_after - id.cfg->policy.retry_min));
    st.held = true;
    st.next_attempt = hold_until;
    st.last_attempt = {now, "rollback",
                       "rolled back from generation " + std::to_string(current->meta.number) + " to " +
                           std::to_string(previous->meta.number) + "; automatic renewal resumes at " +
                           format_time(hold_until)};
    save(id);
    log::notice("identity " + name + ": " + st.last_attempt.message);
    run_due_hooks(id, now);
    return view(id, unix_now()).dump(2) + "\n";
}

// Hooks run for the generation in force once, after the switch that made it so; a crash
// before they ran leaves hooks_due set, and the next tick runs them.
void LifecycleImpl::run_due_hooks(Identity& id, int64_t now) {
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

}  // namespace keyward::lifecycle
