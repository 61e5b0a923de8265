#include "tpm/rc.hpp"

#include <cstdio>

#include <tss2/tss2_rc.h>
#include <tss2/tss2_tpm2_types.h>

namespace keyward::tpm {
namespace {

constexpr TSS2_RC kTpmLayer = TSS2_TPM_RC_LAYER;

// Format-one codes carry the handle/session/parameter number in bits 8-11; format-zero
// warnings do not. Either way the base code is what we act on.
TSS2_RC base_code(TSS2_RC rc) noexcept {
    if (rc & TPM2_RC_FMT1) return rc & (TPM2_RC_FMT1 | 0x3F);
    return rc & (TPM2_RC_VER1 | TPM2_RC_WARN | 0x7F);
}

}  // namespace

RcKind classify(TSS2_RC rc) noexcept {
    if (rc == TSS2_RC_SUCCESS) return RcKind::ok;
    const TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
    if (layer == TSS2_TCTI_RC_LAYER) return RcKind::connection_lost;
    if (layer == TSS2_RESMGR_RC_LAYER || layer == TSS2_RESMGR_TPM_RC_LAYER) {
        // tpm2-abrmd passes TPM codes through in its own layer
        const TSS2_RC inner = rc & ~TSS2_RC_LAYER_MASK;
        if (inner == TPM2_RC_RETRY || inner == TPM2_RC_YIELDED || inner == TPM2_RC_TESTING) return RcKind::busy;
        return RcKind::other;
    }
    if (layer == TSS2_ESAPI_RC_LAYER || layer == TSS2_SYS_RC_LAYER) {
        const TSS2_RC inner = rc & ~TSS2_RC_LAYER_MASK;
        // A dead transport shows as an I/O error or a malformed response; after one, ESYS may
        // also refuse further calls as out of sequence. A fresh context fixes all of them.
        if (inner == TSS2_BASE_RC_IO_ERROR || inner == TSS2_BASE_RC_NO_CONNECTION ||
            inner == TSS2_BASE_RC_MALFORMED_RESPONSE || inner == TSS2_BASE_RC_INSUFFICIENT_RESPONSE ||
            inner == TSS2_BASE_RC_BAD_SEQUENCE || inner == TSS2_BASE_RC_TRY_AGAIN)
            return RcKind::connection_lost;
        return RcKind::other;
    }
    if (layer != kTpmLayer) return RcKind::other;
    switch (base_code(rc)) {
        case TPM2_RC_RETRY:
        case TPM2_RC_YIELDED:
        case TPM2_RC_TESTING:
        case TPM2_RC_NV_RATE: return RcKind::busy;
        case TPM2_RC_OBJECT_MEMORY:
        case TPM2_RC_SESSION_MEMORY:
        case TPM2_RC_OBJECT_HANDLES:
        case TPM2_RC_SESSION_HANDLES: return RcKind::out_of_slots;
        case TPM2_RC_REFERENCE_H0:
        case TPM2_RC_REFERENCE_H1:
        case TPM2_RC_REFERENCE_H2:
        case TPM2_RC_REFERENCE_S0:
        case TPM2_RC_REFERENCE_S1:
        case TPM2_RC_REFERENCE_S2:
        case TPM2_RC_HANDLE: return RcKind::object_gone;
        case TPM2_RC_INITIALIZE:  // a restarted TPM that nobody sent TPM2_Startup yet
            return RcKind::connection_lost;
        case TPM2_RC_AUTH_FAIL:
        case TPM2_RC_BAD_AUTH: return RcKind::auth_failed;
        case TPM2_RC_LOCKOUT: return RcKind::lockout;
        case TPM2_RC_KEY_SIZE:
        case TPM2_RC_CURVE:
        case TPM2_RC_SCHEME:
        case TPM2_RC_HASH:
        case TPM2_RC_ASYMMETRIC: return RcKind::unsupported;
        default: return RcKind::other;
    }
}

std::string rc_text(TSS2_RC rc) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%x", static_cast<unsigned>(rc));
    const char* decoded = Tss2_RC_Decode(rc);
    return std::string(decoded ? decoded : "unknown") + " (" + hex + ")";
}

Status rc_status(TSS2_RC rc, const std::string& what) {
    switch (classify(rc)) {
        case RcKind::connection_lost:
            return Status{ErrorCode::device_unavailable, what + ": the TPM cannot be reached: " + rc_text(rc)};
        case RcKind::out_of_slots:
            return Status{ErrorCode::device_unavailable,
                          what +
                              ": the TPM has no free object or session slot (other programs hold them; a resource "
                              "manager such as /dev/tpmrm0 avoids this): " +
                              rc_text(rc)};
        case RcKind::lockout:
            return Status{ErrorCode::device_error,
                          what +
                              ": the TPM is in dictionary-attack lockout after too many wrong auth values; "
                              "wait for the lockout to expire or reset it with the lockout hierarchy: " +
                              rc_text(rc)};
        case RcKind::unsupported:
            return Status{ErrorCode::unsupported_scheme, what + ": not supported by this TPM: " + rc_text(rc)};
        default: return Status{ErrorCode::device_error, what + " failed: " + rc_text(rc)};
    }
}

}  // namespace keyward::tpm
