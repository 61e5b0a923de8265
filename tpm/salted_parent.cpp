#include "tpm/salted_parent.hpp"

#include <openssl/crypto.h>

namespace keyward::tpm {

TSS2_RC SaltedParent::open(TpmSession& tpm, ESYS_CONTEXT* ctx, const char*& call) {
    return tpm.default_parent(ctx, handle_, primary_, tr_, call);
}

TSS2_RC SaltedParent::start_session(ESYS_CONTEXT* ctx, TPMA_SESSION direction, const char*& call) {
    call = "Esys_StartAuthSession";
    TSS2_RC rc = start_salted_session(ctx, tr_, session_);
    if (rc != TSS2_RC_SUCCESS) return rc;
    return Esys_TRSess_SetAttributes(ctx, session_.get(), TPMA_SESSION_CONTINUESESSION | direction, 0xFF);
}

TSS2_RC SaltedParent::create(ESYS_CONTEXT* ctx, TPM2B_SENSITIVE_CREATE& sensitive, const TPM2B_PUBLIC& tmpl,
                             TPM2B_PUBLIC& pub, TPM2B_PRIVATE& priv, const char*& call) {
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION pcrs{};
    TPM2B_PRIVATE* made_priv = nullptr;
    TPM2B_PUBLIC* made_pub = nullptr;
    call = "Esys_Create";
    const TSS2_RC rc = Esys_Create(ctx, tr_, session(), ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &tmpl, &outside, &pcrs,
                                   &made_priv, &made_pub, nullptr, nullptr, nullptr);
    OPENSSL_cleanse(&sensitive, sizeof sensitive);
    EsysPtr<TPM2B_PRIVATE> priv_owner(made_priv);
    EsysPtr<TPM2B_PUBLIC> pub_owner(made_pub);
    if (rc != TSS2_RC_SUCCESS) return rc;
    pub = *made_pub;
    priv = *made_priv;
    return TSS2_RC_SUCCESS;
}

}  // namespace keyward::tpm
