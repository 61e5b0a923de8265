// One TPM as the backend talks to it: the TCTI connection and its recovery (busy retries,
// reconnects, reloads), the parents keys load under (the persistent SRK, or the primary
// derived in a hierarchy, whose saved context is kept), salted HMAC sessions, and the one key
// kept loaded between calls. The TPM may have as few as three object slots and no resource
// manager (swtpm, /dev/tpm0), so at most one key stays loaded and a parent only while it
// loads a key.
//
// Threading: none of its own. TpmSession is used by one thread at a time (the backend calls
// it under its mutex, and the TPM runs one command at a time anyway).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include <tss2/tss2_esys.h>

#include "core/result.hpp"
#include "tpm/esys.hpp"
#include "tpm/key_file.hpp"
#include "tpm/rc.hpp"

namespace keyward::tpm {

// Where a provisioned TPM keeps its storage root key (TCG "Provisioning Guidance").
constexpr TPM2_HANDLE kSrkHandle = 0x81000001;

// An HMAC session salted to `salt_key`, with parameter encryption of the first command
// parameter (AES-128-CFB), so an auth value or sensitive data never crosses the bus in clear.
TSS2_RC start_salted_session(ESYS_CONTEXT* ctx, ESYS_TR salt_key, Loaded& session);

class TpmSession {
public:
    explicit TpmSession(std::string tcti) : tcti_(std::move(tcti)) {}
    TpmSession(const TpmSession&) = delete;
    TpmSession& operator=(const TpmSession&) = delete;
    ~TpmSession() { disconnect(true); }

    const std::string& tcti() const noexcept { return tcti_; }
    bool connected() const noexcept { return conn_ != nullptr; }
    Status connect();
    // `orderly`: flush what we hold (shutting down); otherwise the connection is gone and
    // the TPM forgot our objects already.
    void disconnect(bool orderly);
    // "TPM 2.0 <manufacturer> <vendor strings>", read on connecting; empty before.
    const std::string& info() const noexcept { return info_; }

    // Runs `op(ESYS_CONTEXT*, const char*& call)` against the TPM, connecting first when
    // needed: TPM_RC_RETRY and friends are retried after a pause; a lost connection is
    // reopened, and a vanished handle or full slot table cleared, then `op` runs once more.
    // `op` names the ESYS call it is in through `call`, for the error. `problem` is op's
    // channel for failures that are not TPM codes (cleared before each attempt).
    template <typename Op>
    Status run(const std::string& what, Op&& op, Status& problem);

    // The parent for new keys: the persistent SRK when the TPM has one, else the derived
    // primary of the owner hierarchy (flushed by `primary` when done). `handle` is what the
    // key file records.
    TSS2_RC default_parent(ESYS_CONTEXT* ctx, TPM2_HANDLE& handle, Loaded& primary, ESYS_TR& tr, const char*& call);

    // Makes `label` the loaded key (flushing the previous one first, so we never hold more
    // than one key, plus its parent for the moment of the load), with a salted session for
    // keys that have an auth value. A blob this TPM cannot load is reported in `problem`.
    TSS2_RC load(ESYS_CONTEXT* ctx, const std::string& label, const KeyFile& file, const char*& call, Status& problem);
    // The loaded key: its label ("" when none), handle and auth session.
    const std::string& loaded_label() const noexcept { return current_.label; }
    ESYS_TR loaded_key() const noexcept { return current_.key.get(); }
    ESYS_TR loaded_session() const noexcept { return current_.session.get(); }
    // Flushes the loaded key, if any.
    void drop_loaded();

private:
    static constexpr int kBusyRetries = 20;
    static constexpr auto kBusyPause = std::chrono::milliseconds(5);

    // The one key kept loaded between calls (and its auth session, for keys with an auth value).
    struct Current {
        std::string label;
        Loaded key;
        Loaded session;
    };

    void read_tpm_info();
    bool find_srk(ESYS_CONTEXT* ctx);
    // A key file's parent: a hierarchy means its primary from the storage template (created
    // now, flushed by `primary` when done); a persistent handle is used as it is.
    TSS2_RC parent_of(ESYS_CONTEXT* ctx, TPM2_HANDLE parent, Loaded& primary, ESYS_TR& tr, const char*& call);

    const std::string tcti_;
    std::unique_ptr<Connection> conn_;
    std::string info_;
    ESYS_TR srk_ = ESYS_TR_NONE;  // the persistent SRK, when present (occupies no slot)
    bool srk_checked_ = false;
    Current current_;
    std::map<TPM2_HANDLE, TPMS_CONTEXT> primary_contexts_;  // hierarchy -> its saved primary
};

template <typename Op>
Status TpmSession::run(const std::string& what, Op&& op, Status& problem) {
    for (int attempt = 0;; ++attempt) {
        if (!conn_)
            if (auto s = connect(); !s.ok()) return Status{s.code, what + ": " + s.message};
        problem = {};
        const char* call = "";
        TSS2_RC rc = TSS2_RC_SUCCESS;
        for (int busy = 0; busy <= kBusyRetries; ++busy) {
            rc = op(conn_->esys(), call);
            if (classify(rc) != RcKind::busy) break;
            std::this_thread::sleep_for(kBusyPause * (busy + 1));
        }
        const RcKind kind = classify(rc);
        if (kind == RcKind::ok) return {};
        const bool retryable =
            kind == RcKind::connection_lost || kind == RcKind::object_gone || kind == RcKind::out_of_slots;
        if (kind == RcKind::connection_lost) disconnect(false);
        else if (retryable) drop_loaded();
        if (retryable && attempt == 0) continue;
        return rc_status(rc, what + ": " + call);
    }
}

}  // namespace keyward::tpm
