// The storage parent a new object is created (or a sealed one loaded) under, and the HMAC
// session salted to it that keeps a secret off the bus in clear: what sealing a PIN and making
// a key both set up first. Whatever it loaded (a derived primary, the session) is flushed when
// it goes out of scope, on every path; a persistent SRK is left to the TPM.
#pragma once

#include <tss2/tss2_esys.h>

#include "tpm/esys.hpp"
#include "tpm/session.hpp"

namespace keyward::tpm {

class SaltedParent {
public:
    // TpmSession::default_parent: the persistent SRK when the TPM has one, else the owner
    // hierarchy's primary, derived now. `call` names the ESYS call that failed.
    TSS2_RC open(TpmSession& tpm, ESYS_CONTEXT* ctx, const char*& call);

    // The salted session, encrypting one parameter: TPMA_SESSION_DECRYPT for a command's first
    // (Create's inSensitive) or TPMA_SESSION_ENCRYPT for a response's (Unseal's outData). A
    // command without such a parameter refuses the attribute, hence one direction per session.
    TSS2_RC start_session(ESYS_CONTEXT* ctx, TPMA_SESSION direction, const char*& call);

    // Esys_Create under the parent, authorised by the session when one was started (else by the
    // parent's empty password). `sensitive` is cleansed whatever the outcome.
    TSS2_RC create(ESYS_CONTEXT* ctx, TPM2B_SENSITIVE_CREATE& sensitive, const TPM2B_PUBLIC& tmpl, TPM2B_PUBLIC& pub,
                   TPM2B_PRIVATE& priv, const char*& call);

    // What a key file or sealed blob records as its parent, and the parent's ESYS handle.
    TPM2_HANDLE handle() const noexcept { return handle_; }
    ESYS_TR tr() const noexcept { return tr_; }
    ESYS_TR session() const noexcept { return session_ ? session_.get() : ESYS_TR_PASSWORD; }

private:
    TPM2_HANDLE handle_ = TPM2_RH_OWNER;
    ESYS_TR tr_ = ESYS_TR_NONE;
    Loaded primary_;  // the derived primary; empty under the SRK
    Loaded session_;  // declared after primary_: flushed first
};

}  // namespace keyward::tpm
