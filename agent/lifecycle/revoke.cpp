// Revocation through the identity's issuer, on request (`keyward identities revoke`), after
// a rekey for a compromised key, and retirement: revoked, nothing left in force, keys gone.
#include <algorithm>

#include "agent/lifecycle/lifecycle_impl.hpp"
#include "agent/lifecycle/schedule.hpp"
#include "core/log.hpp"
#include "pki/certificates.hpp"

namespace keyward::lifecycle {
namespace {

std::string serial_of(const std::string& cert_pem) {
    auto info = pki::describe_pem(cert_pem);
    return info.ok() ? info->serial : std::string("(unreadable)");
}

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
    return out;
}

}  // namespace

Status LifecycleImpl::revoke_certificate(Identity& id, const std::string& cert_pem, const std::string& chain_pem,
                                         const std::string& key, RevocationReason reason, int64_t now) {
    const std::string serial = serial_of(cert_pem);
    const std::string why(revocation_reason_name(reason));
    log::notice("identity " + id.cfg->name + ": asking the " + std::string(id.issuer->kind()) +
                " issuer to revoke certificate " + serial + " (" + why + ")");
    RevokeRequest request{id.cfg->name, cert_pem, chain_pem, key, reason, &keys_, &cancelled_};
    const RevokeResult result = id.issuer->revoke(request);
    if (result.kind != RevokeResult::Kind::revoked) {
        const std::string message =
            "identity " + id.cfg->name + ": certificate " + serial + " not revoked: " + result.message;
        log::warning(message);
        // busy: try again later; the rest needs a person (another issuer, the CA's own tools).
        return Status{result.kind == RevokeResult::Kind::unreachable ? ErrorCode::busy : ErrorCode::invalid_argument,
                      message};
    }
    id.state.revoked = Revocation{serial, now, why, "requested", certificate_fingerprint(cert_pem)};
    save(id);
    log::notice("identity " + id.cfg->name + ": certificate " + serial + " revoked (" + why + "): " + result.message);
    return {};
}

Status LifecycleImpl::retire(Identity& id, int64_t now, std::string& message) {
    IdentityState& st = id.state;
    std::vector<std::string> keys;
    auto add = [&](const std::string& k) {
        if (!k.empty() && std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    };
    if (auto current = id.store.current()) add(current->meta.key);
    if (auto previous = id.store.previous()) add(previous->meta.key);
    if (st.pending && st.pending->new_key) add(st.pending->key);
    for (const auto& d : st.destroy) add(d.key);

    // Nothing in force first: from here on no program picks the identity's files up.
    if (Status s = id.store.remove_all_generations(); !s.ok())
        return Status{s.code, "identity " + id.cfg->name + ": cannot retire it: " + s.message};
    IdentityState retired;
    retired.revoked = st.revoked;
    retired.config_fingerprint = st.config_fingerprint;
    retired.retired = true;
    for (const auto& k : keys) retired.destroy.push_back({k, now});  // a crash from here on: the GC finishes
    st = std::move(retired);
    save(id);

    std::vector<std::string> left;
    for (auto it = st.destroy.begin(); it != st.destroy.end();) {
        Status s = destroy_key_now(id, it->key);
        if (s.ok() || s.code == ErrorCode::no_such_key) {
            it = st.destroy.erase(it);
            continue;
        }
        left.push_back(it->key + " (" + s.message + ")");
        it->after = now + 3600;
        ++it;
    }
    message += std::string(message.empty() ? "" : "; ") + "identity retired: its generations were removed" +
               (keys.empty() ? std::string() : " and its keys destroyed (" + joined(keys) + ")");
    if (!left.empty()) message += "; not destroyed yet, tried again hourly: " + joined(left);
    st.last_attempt = {now, "retired", message};
    save(id);
    log::notice("identity " + id.cfg->name + ": " + message);
    return {};
}

void LifecycleImpl::revoke_replaced(Identity& id, const Generation& replaced, int64_t now, AttemptReport& report) {
    Status s = revoke_certificate(id, replaced.cert_pem, replaced.chain_pem, replaced.meta.key,
                                  RevocationReason::key_compromise, now);
    if (s.ok()) {
        report.message += "; the replaced certificate was revoked (keyCompromise)";
    } else {
        report.message += "; the replaced certificate was NOT revoked: " + s.message;
        log::error("identity " + id.cfg->name + ": the replaced certificate " + serial_of(replaced.cert_pem) +
                   " for a compromised key is still valid; revoke it at the CA");
    }
    // Nothing rolls back to a compromised key.
    destroy_replaced_key_now(id, replaced.meta.key, now);
}

}  // namespace keyward::lifecycle
