#include "tpm/esys.hpp"

#include "tpm/rc.hpp"

namespace keyward::tpm {

Result<std::unique_ptr<Connection>> Connection::open(const std::string& tcti_config) {
    std::unique_ptr<Connection> c(new Connection());
    TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti_config.c_str(), &c->tcti_);
    if (rc != TSS2_RC_SUCCESS) {
        c->tcti_ = nullptr;
        return Status{ErrorCode::device_unavailable, "cannot open TCTI \"" + tcti_config + "\": " + rc_text(rc)};
    }
    rc = Esys_Initialize(&c->esys_, c->tcti_, nullptr);
    if (rc != TSS2_RC_SUCCESS) {
        c->esys_ = nullptr;
        return Status{ErrorCode::device_unavailable, "cannot start ESAPI on \"" + tcti_config + "\": " + rc_text(rc)};
    }
    // A TPM that was just (re)started without TPM2_Startup; anything else answers
    // TPM_RC_INITIALIZE, which is fine.
    rc = Esys_Startup(c->esys_, TPM2_SU_CLEAR);
    (void)rc;
    return c;
}

Connection::~Connection() {
    if (esys_) Esys_Finalize(&esys_);
    if (tcti_) Tss2_TctiLdr_Finalize(&tcti_);
}

void Loaded::flush() noexcept {
    if (handle_ == ESYS_TR_NONE || !ctx_) return;
    if (close_only_ || Esys_FlushContext(ctx_, handle_) != TSS2_RC_SUCCESS) Esys_TR_Close(ctx_, &handle_);
    handle_ = ESYS_TR_NONE;
}

void Loaded::abandon() noexcept {
    if (handle_ == ESYS_TR_NONE || !ctx_) return;
    Esys_TR_Close(ctx_, &handle_);
    handle_ = ESYS_TR_NONE;
}

}  // namespace keyward::tpm
