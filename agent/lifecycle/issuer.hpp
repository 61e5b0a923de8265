// One interface for every way of getting a certificate: ACME, CMP, a certmonger-style
// helper command. An issuer turns a CSR (signed on the device) into a certificate chain,
// or says why not; it never decides whether the answer is good (validation does).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "agent/lifecycle/cancel.hpp"
#include "agent/lifecycle/key_access.hpp"

namespace keyward::lifecycle {

struct IssueRequest {
    std::string identity;                // the identity's name
    std::string key;                     // name of the (new) device key the CSR is for
    std::string csr_pem;                 // PKCS#10, signed by `key`
    std::string current_cert_pem;        // the certificate in force (empty on first enrollment)
    std::string current_key;             // the key of the certificate in force (renewal authenticated by it)
    std::string cookie;                  // from an earlier `pending` answer, for polling
    KeyAccess* keys = nullptr;           // device keys (e.g. for an ACME account key, CMP protection)
    const CancelFlag* cancel = nullptr;  // raised when the agent stops: give up at the next safe point
};

struct IssueResult {
    enum class Kind {
        issued,         // cert_pem (+ chain_pem) hold the answer
        pending,        // ask again after retry_after with `cookie`
        rejected,       // the CA said no: report, do not retry in a loop
        unreachable,    // transient: retry with backoff
        misconfigured,  // our side is wrong: report, retry only after a config change or long backoff
    };
    Kind kind = Kind::unreachable;
    std::string cert_pem;   // the end-entity certificate
    std::string chain_pem;  // intermediates (may be empty)
    std::string cookie;
    std::chrono::seconds retry_after{0};
    std::string message;  // for people: what happened, what to do
};

std::string_view issue_kind_name(IssueResult::Kind kind) noexcept;

// The CRLReason codes (RFC 5280 §5.3.1) an operator may give.
enum class RevocationReason : int {
    unspecified = 0,
    key_compromise = 1,
    superseded = 4,
    cessation_of_operation = 5,
};
std::optional<RevocationReason> revocation_reason_from_name(std::string_view name) noexcept;  // "keyCompromise"
std::string_view revocation_reason_name(RevocationReason reason) noexcept;
inline constexpr const char* kRevocationReasonNames = "unspecified, keyCompromise, superseded, cessationOfOperation";

struct RevokeRequest {
    std::string identity;
    std::string cert_pem;   // the certificate to revoke
    std::string chain_pem;  // its issuer first (may be empty)
    std::string key;        // the device key the certificate is for
    RevocationReason reason = RevocationReason::unspecified;
    KeyAccess* keys = nullptr;
    const CancelFlag* cancel = nullptr;
};

struct RevokeResult {
    enum class Kind {
        revoked,        // the CA revoked it (or says it already was)
        rejected,       // the CA refused
        unreachable,    // transient: try again later
        unsupported,    // this issuer cannot revoke
        misconfigured,  // our side is wrong
    };
    Kind kind = Kind::unreachable;
    std::string message;  // for people: what happened, what to do
};

class Issuer {
public:
    virtual ~Issuer() = default;
    virtual std::string_view kind() const noexcept = 0;  // "acme", "cmp", "helper"
    // Blocking; called from the lifecycle's worker thread, never the event loop.
    virtual IssueResult submit(const IssueRequest& request) = 0;
    // For a `pending` answer: ask again with request.cookie set.
    virtual IssueResult poll(const IssueRequest& request) = 0;
    // Asks the CA to revoke request.cert_pem. Blocking, like submit.
    virtual RevokeResult revoke(const RevokeRequest&) {
        return {RevokeResult::Kind::unsupported, "the " + std::string(kind()) + " issuer cannot revoke certificates"};
    }
};

// A kind of issuer configured by its own [identities.NAME.issuer] table ("acme", "cmp"). The
// agent hands the lifecycle the kinds it was built with (agent/lifecycle/issuers.hpp), so
// neither the lifecycle nor this interface depends on any of them. The helper command is
// the lifecycle's own kind: its settings are part of the identity.
struct IssuerKind {
    std::string name;
    // When the configuration is read: errors name the file, line and key (`prefix` is the
    // table's dotted name, "identities.web.issuer").
    std::function<Status(const toml::table& issuer, const std::string& source, const std::string& prefix)> check;
    // Builds the issuer from a table `check` accepted; `state_dir` is private to the identity.
    std::function<std::unique_ptr<Issuer>(const toml::table& issuer, const std::string& state_dir)> make;
};
using IssuerKinds = std::vector<IssuerKind>;

}  // namespace keyward::lifecycle
