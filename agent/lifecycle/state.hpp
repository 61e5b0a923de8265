// What the lifecycle remembers about an identity between runs (DIR/state.json): the last
// attempt and its outcome, when to try next, consecutive failures, a request the CA asked
// us to poll, keys waiting for destruction. Written atomically after every change, so a
// restart neither forgets a backoff (no retry storm) nor a pending request.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace keyward::lifecycle {

struct Attempt {
    int64_t time = 0;
    std::string outcome;  // issued, pending, rejected, unreachable, misconfigured, invalid, failed, rollback, not_due
    std::string message;
};

// A renewal in progress: the key it is for (made for it when new_key) and, once the CA
// asked us to wait, the cookie and the CSR to poll with.
struct PendingRequest {
    std::string id;  // ties the attempt to the generation it produces (meta.json)
    std::string key;
    bool new_key = false;
    std::string cookie;
    std::string csr_pem;
    int64_t since = 0;
};

struct KeyToDestroy {
    std::string key;
    int64_t after = 0;
};

// The certificate in force was found revoked, or revoked on request.
struct Revocation {
    std::string serial;       // of the revoked certificate (hex, as the view shows it)
    int64_t time = 0;         // when keyward learnt it
    std::string reason;       // keyCompromise, superseded, ... ("unknown" when a responder gave none)
    std::string source;       // "requested" (keyward identities revoke), "ocsp", "crl"
    std::string fingerprint;  // SHA-256 of the certificate (serials repeat across CAs and test CAs)
};

// The fingerprint a Revocation names its certificate by: SHA-256 of the DER, hex; empty when
// the PEM holds no certificate.
std::string certificate_fingerprint(const std::string& cert_pem);
// Whether `revoked` is about the certificate `cert_pem`.
bool revocation_is_for(const Revocation& revoked, const std::string& cert_pem);

// The last revocation check of the certificate in force (OCSP), and when the next is due.
struct RevocationCheck {
    int64_t time = 0;
    std::string result;  // good, revoked, unknown, unavailable, no responder
    std::string message;
    int64_t next = 0;         // 0: at the next occasion
    std::string fingerprint;  // of the certificate checked
};

struct IdentityState {
    Attempt last_attempt;
    int failures = 0;          // consecutive
    int64_t next_attempt = 0;  // 0: as the certificate's schedule says
    bool held = false;         // rejected or misconfigured: next_attempt is a long hold
    std::optional<PendingRequest> pending;
    std::vector<KeyToDestroy> destroy;
    int hooks_due = 0;  // generation whose hooks have not run yet
    Attempt hooks;      // the last hook run
    std::string config_fingerprint;
    std::optional<Revocation> revoked;
    bool retired = false;  // revoked, generations removed, keys destroyed: nothing until an enroll
    RevocationCheck check;
};

Result<IdentityState> load_state(const std::string& path);  // missing file: a fresh state
Status save_state(const std::string& path, const IdentityState& state);

}  // namespace keyward::lifecycle
