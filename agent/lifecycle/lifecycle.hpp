// Certificate lifecycle inside keywardd: identities (a key + its certificate chain + an
// issuer + a renewal policy + hooks), enrollment, scheduled renewal, validation and the
// crash-safe two-phase swap. See docs/renewal.md.
//
// Threading: the agent calls these from a dedicated lifecycle executor (one thread), never
// from the event loop, so they may block on the network and on device keys.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "agent/lifecycle/issuer.hpp"
#include "agent/lifecycle/key_access.hpp"
#include "core/result.hpp"

namespace keyward::lifecycle {

// One [identities.NAME] table, validated. Fields are the lifecycle's own business; the
// agent only stores and compares them (for reload) and passes them to make_lifecycle().
struct IdentityConfig;
bool same_identity_config(const IdentityConfig& a, const IdentityConfig& b);

// Parses the [identities] section of a configuration file. Errors name the file, line and
// key like every other config error ("keyward.toml:12: identities.web.issuer: ...").
// Paths left empty here are resolved against the state directory by make_lifecycle().
// `kinds` are the issuers besides the helper command that a configuration may name.
Result<std::vector<std::shared_ptr<const IdentityConfig>>> parse_identities(const toml::table& section,
                                                                            const std::string& source,
                                                                            const IssuerKinds& kinds);

struct RenewRequest {
    std::string identity;
    bool now = false;    // ignore the schedule
    bool rekey = false;  // new key on the device for this renewal
    // The key in force is compromised: rekey, then revoke the replaced certificate
    // (keyCompromise) and destroy the replaced key at once instead of after the grace period.
    bool compromised = false;
};

struct RevokeIdentity {
    std::string identity;
    std::string reason;   // empty: unspecified; else one of kRevocationReasonNames
    bool retire = false;  // also remove its generations and destroy its keys
};

class Lifecycle {
public:
    virtual ~Lifecycle() = default;
    // Views are JSON documents (the CLI prints them, or passes them through with --json).
    virtual Result<std::string> list_json() = 0;
    virtual Result<std::string> show_json(const std::string& identity) = 0;
    // Enrolls when the identity has no certificate yet, renews otherwise; answers the
    // identity's view afterwards. Failures keep the identity in force and are reported.
    virtual Result<std::string> renew(const RenewRequest& request) = 0;
    virtual Result<std::string> rollback(const std::string& identity) = 0;
    // Revokes the certificate in force through the identity's issuer (docs/renewal.md); a
    // CA that refuses or cannot revoke is an error and nothing changes.
    virtual Result<std::string> revoke(const RevokeIdentity& request) = 0;
    // Runs due renewals (the agent calls it periodically from the lifecycle executor).
    virtual void tick() = 0;
    // Seconds until tick() should run again (bounded by the caller to [1, 3600]).
    virtual long next_tick_seconds() = 0;
    // From any thread, when the agent stops: the attempt in progress gives up at its next
    // safe point and no new one starts. What is cut short is left as a crash there would
    // leave it (docs/renewal.md, the two-phase swap), so the next start finishes it alike.
    virtual void cancel() noexcept = 0;
};

// Unix time in seconds. The lifecycle reads the time only through it, so tests can move it
// (grace periods, polls, backoffs) without waiting; empty: the system clock.
using Clock = std::function<int64_t()>;

// The directory of an identity's certificates (store.hpp): its `dir`, else
// STATE_DIR/identities/NAME.
std::string identity_dir(const IdentityConfig& identity, const std::string& state_dir);

std::unique_ptr<Lifecycle> make_lifecycle(std::vector<std::shared_ptr<const IdentityConfig>> identities, KeyAccess keys,
                                          const std::string& state_dir, IssuerKinds kinds, Clock clock = {});

}  // namespace keyward::lifecycle
