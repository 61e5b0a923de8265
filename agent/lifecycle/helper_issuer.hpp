// An issuer that runs a certmonger-style CA helper (certmonger's doc/submit.txt): the
// operation, CSR, previous certificate and cookie in CERTMONGER_* variables; the answer in
// the exit code and on stdout. Existing certmonger helpers (e.g. Debian's
// /usr/lib/certmonger/local-submit) and small scripts around `openssl ca` plug in.
#pragma once

#include <memory>

#include "agent/lifecycle/identity_config.hpp"
#include "agent/lifecycle/issuer.hpp"
#include "agent/lifecycle/subprocess.hpp"

namespace keyward::lifecycle {

std::unique_ptr<Issuer> make_helper_issuer(std::shared_ptr<const IdentityConfig> identity);

// The helper's exit code and output, as an IssueResult (exposed for unit tests).
IssueResult interpret_helper_answer(const CommandOutcome& outcome, int64_t timeout_seconds);
// The helper's answer to CERTMONGER_OPERATION=REVOKE (exposed for unit tests).
RevokeResult interpret_helper_revoke_answer(const CommandOutcome& outcome, int64_t timeout_seconds);

// Builds the issuer named by the identity's [issuer] table: the helper, or one of `kinds`;
// nullptr for a kind this build does not have.
std::unique_ptr<Issuer> make_issuer(const IssuerKinds& kinds, std::shared_ptr<const IdentityConfig> identity,
                                    const std::string& state_dir);

}  // namespace keyward::lifecycle
