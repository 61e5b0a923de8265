#include "tpm/session.hpp"

#include <algorithm>

#include "tpm/public_key.hpp"

namespace keyward::tpm {

TSS2_RC start_salted_session(ESYS_CONTEXT* ctx, ESYS_TR salt_key, Loaded& session) {
    TPMT_SYM_DEF sym{};
    sym.algorithm = TPM2_ALG_AES;
    sym.keyBits.aes = 128;
    sym.mode.aes = TPM2_ALG_CFB;
    ESYS_TR s = ESYS_TR_NONE;
    TSS2_RC rc = Esys_StartAuthSession(ctx, salt_key, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, nullptr,
                                       TPM2_SE_HMAC, &sym, TPM2_ALG_SHA256, &s);
    if (rc != TSS2_RC_SUCCESS) return rc;
    session = Loaded(ctx, s);
    // decrypt: the first command parameter (inSensitive, the digest) goes encrypted.
    return Esys_TRSess_SetAttributes(ctx, s, TPMA_SESSION_CONTINUESESSION | TPMA_SESSION_DECRYPT, 0xFF);
}

Status TpmSession::connect() {
    auto c = Connection::open(tcti_);
    if (!c.ok()) return c.status();
    conn_ = std::move(c).value();
    srk_checked_ = false;
    read_tpm_info();
    return {};
}

void TpmSession::disconnect(bool orderly) {
    if (orderly) {
        current_.session.flush();
        current_.key.flush();
    } else {
        current_.session.abandon();
        current_.key.abandon();
    }
    current_ = {};
    if (conn_ && srk_ != ESYS_TR_NONE) Esys_TR_Close(conn_->esys(), &srk_);
    srk_ = ESYS_TR_NONE;
    srk_checked_ = false;
    primary_contexts_.clear();
    conn_.reset();
}

void TpmSession::drop_loaded() {
    current_.session.flush();
    current_.key.flush();
    current_ = {};
}

void TpmSession::read_tpm_info() {
    TPMS_CAPABILITY_DATA* raw = nullptr;
    if (Esys_GetCapability(conn_->esys(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                           TPM2_PT_MANUFACTURER, 8, nullptr, &raw) != TSS2_RC_SUCCESS)
        return;
    EsysPtr<TPMS_CAPABILITY_DATA> data(raw);
    std::string vendor, manufacturer;
    for (uint32_t i = 0; i < data->data.tpmProperties.count; ++i) {
        const auto& p = data->data.tpmProperties.tpmProperty[i];
        auto chars = [](uint32_t v) {
            std::string s;
            for (int shift = 24; shift >= 0; shift -= 8) {
                const char ch = static_cast<char>((v >> shift) & 0xFF);
                if (ch >= 0x20 && ch < 0x7F) s += ch;
            }
            return s;
        };
        if (p.property == TPM2_PT_MANUFACTURER) manufacturer = chars(p.value);
        if (p.property >= TPM2_PT_VENDOR_STRING_1 && p.property <= TPM2_PT_VENDOR_STRING_4) vendor += chars(p.value);
    }
    std::string text = "TPM 2.0 " + manufacturer + " " + vendor;
    text.erase(std::unique(text.begin(), text.end(), [](char a, char b) { return a == ' ' && b == ' '; }), text.end());
    while (!text.empty() && text.back() == ' ') text.pop_back();
    info_ = text;
}

TSS2_RC TpmSession::default_parent(ESYS_CONTEXT* ctx, TPM2_HANDLE& handle, Loaded& primary, ESYS_TR& tr,
                                   const char*& call) {
    if (find_srk(ctx)) {
        handle = kSrkHandle;
        tr = srk_;
        return TSS2_RC_SUCCESS;
    }
    handle = TPM2_RH_OWNER;
    return parent_of(ctx, TPM2_RH_OWNER, primary, tr, call);
}

bool TpmSession::find_srk(ESYS_CONTEXT* ctx) {
    if (srk_checked_) return srk_ != ESYS_TR_NONE;
    srk_checked_ = true;
    // Ask first: TR_FromTPMPublic on an absent handle fails loudly in ESYS's log.
    TPMS_CAPABILITY_DATA* raw = nullptr;
    if (Esys_GetCapability(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES, kSrkHandle, 1, nullptr,
                           &raw) != TSS2_RC_SUCCESS)
        return false;
    EsysPtr<TPMS_CAPABILITY_DATA> handles(raw);
    if (handles->data.handles.count == 0 || handles->data.handles.handle[0] != kSrkHandle) return false;
    ESYS_TR tr = ESYS_TR_NONE;
    if (Esys_TR_FromTPMPublic(ctx, kSrkHandle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr) != TSS2_RC_SUCCESS)
        return false;
    // Only a storage key will do as a parent.
    TPM2B_PUBLIC* pub = nullptr;
    if (Esys_ReadPublic(ctx, tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, nullptr, nullptr) == TSS2_RC_SUCCESS) {
        EsysPtr<TPM2B_PUBLIC> owner(pub);
        const TPMA_OBJECT a = pub->publicArea.objectAttributes;
        if ((a & TPMA_OBJECT_RESTRICTED) && (a & TPMA_OBJECT_DECRYPT)) {
            srk_ = tr;
            return true;
        }
    }
    Esys_TR_Close(ctx, &tr);
    return false;
}

TSS2_RC TpmSession::parent_of(ESYS_CONTEXT* ctx, TPM2_HANDLE parent, Loaded& primary, ESYS_TR& tr, const char*& call) {
    if (parent == kSrkHandle && find_srk(ctx)) {
        tr = srk_;
        return TSS2_RC_SUCCESS;
    }
    if ((parent >> 24) == TPM2_HT_PERSISTENT) {
        call = "Esys_TR_FromTPMPublic (the key's persistent parent)";
        ESYS_TR t = ESYS_TR_NONE;
        TSS2_RC rc = Esys_TR_FromTPMPublic(ctx, parent, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &t);
        if (rc != TSS2_RC_SUCCESS) return rc;
        primary = Loaded::persistent(ctx, t);
        tr = t;
        return TSS2_RC_SUCCESS;
    }
    ESYS_TR hierarchy;
    switch (parent) {
        case TPM2_RH_OWNER: hierarchy = ESYS_TR_RH_OWNER; break;
        case TPM2_RH_ENDORSEMENT: hierarchy = ESYS_TR_RH_ENDORSEMENT; break;
        case TPM2_RH_PLATFORM: hierarchy = ESYS_TR_RH_PLATFORM; break;
        case TPM2_RH_NULL: hierarchy = ESYS_TR_RH_NULL; break;
        default: call = "finding the key's parent"; return TPM2_RC_HANDLE | TPM2_RC_1;
    }
    // A saved context of the primary reloads much faster than CreatePrimary derives it.
    if (auto saved = primary_contexts_.find(parent); saved != primary_contexts_.end()) {
        ESYS_TR t = ESYS_TR_NONE;
        if (Esys_ContextLoad(ctx, &saved->second, &t) == TSS2_RC_SUCCESS) {
            primary = Loaded(ctx, t);
            tr = t;
            return TSS2_RC_SUCCESS;
        }
        primary_contexts_.erase(saved);  // from before a TPM reset: derive it again
    }
    const TPM2B_PUBLIC tmpl = storage_primary_template();
    TPM2B_SENSITIVE_CREATE sensitive{};
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION pcrs{};
    call = "Esys_CreatePrimary";
    ESYS_TR t = ESYS_TR_NONE;
    TSS2_RC rc = Esys_CreatePrimary(ctx, hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &tmpl,
                                    &outside, &pcrs, &t, nullptr, nullptr, nullptr, nullptr);
    if (rc != TSS2_RC_SUCCESS) return rc;
    primary = Loaded(ctx, t);
    tr = t;
    TPMS_CONTEXT* saved = nullptr;
    if (Esys_ContextSave(ctx, t, &saved) == TSS2_RC_SUCCESS) {
        EsysPtr<TPMS_CONTEXT> owner(saved);
        primary_contexts_[parent] = *saved;
    }
    return TSS2_RC_SUCCESS;
}

TSS2_RC TpmSession::load(ESYS_CONTEXT* ctx, const std::string& label, const KeyFile& file, const char*& call,
                         Status& problem) {
    if (current_.label == label && current_.key) return TSS2_RC_SUCCESS;
    drop_loaded();
    Loaded parent;
    ESYS_TR parent_tr = ESYS_TR_NONE;
    TSS2_RC rc = parent_of(ctx, file.parent, parent, parent_tr, call);
    if (rc != TSS2_RC_SUCCESS) return rc;
    call = "Esys_Load";
    ESYS_TR key = ESYS_TR_NONE;
    rc = Esys_Load(ctx, parent_tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &file.priv, &file.pub, &key);
    Current next;
    if (rc == TSS2_RC_SUCCESS) {
        next.key = Loaded(ctx, key);
        if (!file.empty_auth) {
            call = "Esys_StartAuthSession";
            rc = start_salted_session(ctx, parent_tr, next.session);
        }
    }
    if (rc != TSS2_RC_SUCCESS) {
        // TPM_RC_INTEGRITY and friends on Load: this blob is not for this TPM / parent.
        if (classify(rc) == RcKind::other)
            problem =
                Status{ErrorCode::device_error, "the TPM cannot load key " + label + " (" + call + ": " + rc_text(rc) +
                                                    "); it was made by another TPM or under another parent"};
        return classify(rc) == RcKind::other ? TSS2_RC_SUCCESS : rc;
    }
    next.label = label;
    current_ = std::move(next);
    return TSS2_RC_SUCCESS;
}

}  // namespace keyward::tpm
