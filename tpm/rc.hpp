// TSS2 response codes: what they mean for the backend (retry, reconnect, reload, give up)
// and how to say them to people.
#pragma once

#include <string>

#include <tss2/tss2_common.h>

#include "core/result.hpp"

namespace keyward::tpm {

enum class RcKind {
    ok,
    busy,             // TPM_RC_RETRY / YIELDED / TESTING: the same command again, shortly
    connection_lost,  // the TCTI failed (swtpm restarted, device gone): reopen, then once more
    object_gone,      // a handle we hold is no longer loaded (flushed by someone, TPM reset): reload once
    out_of_slots,     // TPM_RC_OBJECT_MEMORY / SESSION_MEMORY: free our own slots and try once more
    auth_failed,      // the auth value was wrong: never retried
    lockout,          // dictionary-attack lockout: never retried
    unsupported,      // the TPM cannot do this (key size, curve, scheme)
    other,
};

RcKind classify(TSS2_RC rc) noexcept;

// "TPM_RC_AUTH_FAIL (0x98e)"-style text from Tss2_RC_Decode.
std::string rc_text(TSS2_RC rc);

// The Status for a failed call: `what` names the operation ("Esys_Sign for key web").
Status rc_status(TSS2_RC rc, const std::string& what);

}  // namespace keyward::tpm
