// One attempt: the key (the current one, or a new one for a rekey, recorded before it is
// made), the CSR signed on the device, the issuer's answer (submit, or poll a pending
// request), and what the answer means for the schedule.
#include <algorithm>

#include "agent/lifecycle/lifecycle_impl.hpp"
#include "core/durations.hpp"
#include "core/log.hpp"
#include "pki/csr.hpp"

namespace keyward::lifecycle {

// "web.3", or "web.3-2"... when taken (known to the agent, or refused by the token).
std::string LifecycleImpl::new_key_name(const std::string& base, int generation,
                                        const std::vector<std::string>& refused) {
    std::string name = base + "." + std::to_string(generation);
    auto taken = [&](const std::string& n) {
        return keys_.describe(n).ok() || std::find(refused.begin(), refused.end(), n) != refused.end();
    };
    for (int k = 2; taken(name); ++k) name = base + "." + std::to_string(generation) + "-" + std::to_string(k);
    return name;
}

// Chooses (and if needed makes) the key of this attempt; records it before making it.
Result<std::string> LifecycleImpl::attempt_key(Identity& id, const std::optional<Generation>& current, bool rekey,
                                               int64_t now) {
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
    std::string cleared;  // the name whose leftovers were removed (once per name)
    while (make) {
        save(id);  // remember the key before it exists, so a crash cannot orphan it
        log::notice("identity " + id.cfg->name + ": generating key " + key + " (" + id.cfg->key_type + ")");
        auto made = keys_.generate(key, id.cfg->key_type, id.cfg->token);
        if (made.ok()) break;
        // Objects by that name the agent does not list as a key are what a generation cut
        // short leaves (a public half without its private key): nothing can use them, and
        // the name is this identity's own, so they go and the name is used again.
        if (made.status().code == ErrorCode::key_exists && cleared != key && keys_.remove_orphan &&
            !keys_.describe(key).ok()) {
            Status removed = keys_.remove_orphan(key, id.cfg->token);
            cleared = key;
            if (removed.ok()) {
                log::warning("identity " + id.cfg->name + ": removed objects named " + key +
                             " left on the device by an interrupted key generation");
                continue;
            }
            log::warning("identity " + id.cfg->name + ": cannot remove the objects named " + key +
                         " left on the device: " + removed.message);
        }
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

AttemptReport LifecycleImpl::attempt(Identity& id, const std::optional<Generation>& current, bool rekey, int64_t now,
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

AttemptReport LifecycleImpl::handle(Identity& id, const std::optional<Generation>& current, const IssueRequest& request,
                                    IssueResult result, int64_t now) {
    IdentityState& st = id.state;
    switch (result.kind) {
        case IssueResult::Kind::issued: return install(id, current, request, result);
        case IssueResult::Kind::pending: {
            const int64_t delay =
                result.retry_after.count() > 0 ? result.retry_after.count() : id.cfg->policy.retry_min;
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
        case IssueResult::Kind::unreachable: return fail(id, current, "unreachable", result.message, now, false);
    }
    return fail(id, current, "failed", "unknown answer from the issuer", now, false);
}

// The CA will not answer this request again: keep only a key made for it (for reuse).
void LifecycleImpl::forget_request(IdentityState& st) {
    if (!st.pending) return;
    if (!st.pending->new_key) {
        st.pending.reset();
        return;
    }
    st.pending->cookie.clear();
    st.pending->csr_pem.clear();
}

}  // namespace keyward::lifecycle
