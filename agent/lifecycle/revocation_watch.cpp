// The certificate in force, checked for revocation by OCSP (the CRL where there is no
// responder or it cannot answer): when the last answer's
// nextUpdate passes and at least every `revocation_check_interval`, and after each renewal
// (a new certificate has not been checked). A revocation found makes the identity due at
// once; an unreachable responder is a soft-fail, shown in the view, never a revocation.
#include <algorithm>

#include "agent/lifecycle/lifecycle_impl.hpp"
#include "agent/lifecycle/ocsp_check.hpp"
#include "core/log.hpp"
#include "pki/certificates.hpp"

namespace keyward::lifecycle {

namespace {

constexpr std::chrono::seconds kCheckTimeout{15};

}  // namespace

void LifecycleImpl::watch_revocation(Identity& id, const std::optional<Generation>& current, int64_t now) {
    IdentityState& st = id.state;
    const int64_t interval = id.cfg->revocation_check_interval;
    if (!current || interval <= 0) return;
    const std::string fp = certificate_fingerprint(current->cert_pem);
    if (fp.empty()) return;
    if (st.revoked && st.revoked->fingerprint == fp) return;  // known: the renewal that replaces it is due
    if (st.check.fingerprint == fp && st.check.next > now) return;

    RevocationAnswer a = check_ocsp(current->cert_pem, current->chain_pem, id.cfg->trust_anchors, kCheckTimeout);
    using Kind = RevocationAnswer::Kind;
    if (a.kind == Kind::no_responder || a.kind == Kind::unavailable) {
        // The CRL: where there is no OCSP responder, or it cannot answer.
        RevocationAnswer crl = check_crl(current->cert_pem, current->chain_pem, id.cfg->trust_anchors, kCheckTimeout);
        if (a.kind == Kind::no_responder && crl.kind != Kind::no_responder) a = std::move(crl);
        else if (crl.kind == Kind::good || crl.kind == Kind::revoked) a = std::move(crl);
        else if (crl.kind == Kind::unavailable) a.message += "; " + crl.message;
    }
    const std::string result(revocation_answer_name(a.kind));
    int64_t next = now + interval;
    if (a.kind == RevocationAnswer::Kind::unavailable)
        next = now + std::min<int64_t>(interval, std::max<int64_t>(id.cfg->policy.retry_min, 30));
    else if (a.next_update > now) next = std::min(next, a.next_update);
    const bool news = st.check.result != result || st.check.fingerprint != fp;
    st.check = RevocationCheck{now, result, a.message, next, fp};
    auto info = pki::describe_pem(current->cert_pem);
    const std::string serial = info.ok() ? info->serial : std::string("?");
    if (a.kind == RevocationAnswer::Kind::revoked) {
        st.revoked = Revocation{serial, now, a.reason, a.source, fp};
        st.held = false;  // a hold is for our own mistakes; this one needs a new certificate now
        st.next_attempt = 0;
        st.failures = 0;
        log::error("identity " + id.cfg->name + ": certificate " + serial + " has been revoked (" + a.reason + ", " +
                   (a.source == "crl" ? "CRL " : "OCSP ") + a.url + "); enrolling again now");
        log::notice("audit: op=revoked identity=" + id.cfg->name + " serial=" + serial + " reason=" + a.reason +
                    " source=" + a.source);
    } else if (a.kind == RevocationAnswer::Kind::unavailable && news) {
        log::warning("identity " + id.cfg->name + ": revocation status unknown (soft-fail): " + a.message);
    } else if (news) {
        log::info("identity " + id.cfg->name + ": certificate " + serial + ": " + a.message);
    }
    save(id);
}

}  // namespace keyward::lifecycle
