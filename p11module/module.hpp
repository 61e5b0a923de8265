// The state of keyward-pkcs11.so between C_Initialize and C_Finalize: the agent client,
// the object table and the sessions. entry_points.cpp turns the PKCS#11 C calls into
// calls on one Module.
//
// Threading (CKF_OS_LOCKING_OK): every method may be called from any thread. The object
// table and the session table each sit under their own mutex, held only to look up or
// replace entries, never across a call to the agent; a session's operations are
// serialised on the session's own mutex, so signatures in different sessions travel to
// the agent side by side on the client's one pipelined connection.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <p11-kit/pkcs11.h>

#include "core/ossl.hpp"
#include "core/result.hpp"
#include "ipc/client.hpp"
#include "p11module/mechanisms.hpp"
#include "p11module/objects.hpp"

namespace keyward::p11module {

// One slot, one token: the agent is one policy authority, whatever devices are behind it,
// so the keys of all its tokens that the caller may use appear side by side on one token.
inline constexpr CK_SLOT_ID kSlotId = 1;

// What failed talking to the agent, in PKCS#11 terms. An agent that cannot be reached is
// a removed device: consumers drop their session and come back when the token is present.
CK_RV rv_for(const Status& status) noexcept;

struct SignOperation {
    std::shared_ptr<const Object> key;
    const MechanismInfo* mechanism = nullptr;
    std::optional<Scheme> pss_scheme;  // from the PSS parameters
    ossl::MdCtx hash;                  // hashing mechanisms
    std::vector<uint8_t> input;        // the others: what the caller gave so far
    bool multi_part = false;
};

struct FindOperation {
    std::vector<CK_OBJECT_HANDLE> handles;
    size_t next = 0;
};

struct Session {
    std::mutex mutex;  // one operation at a time in one session
    CK_FLAGS flags = CKF_SERIAL_SESSION;
    std::optional<FindOperation> find;
    std::optional<SignOperation> sign;
    ossl::MdCtx digest;  // C_DigestInit .. C_Digest/C_DigestFinal; null when none is active
};

// C_Digest*: in `s` (its mutex held by the caller), under the two-call size convention.
CK_RV digest_init(Session& s, CK_MECHANISM_TYPE type);
CK_RV digest(Session& s, std::span<const uint8_t> data, CK_BYTE_PTR out, CK_ULONG_PTR out_len);
CK_RV digest_update(Session& s, std::span<const uint8_t> data);
CK_RV digest_final(Session& s, CK_BYTE_PTR out, CK_ULONG_PTR out_len);

class Module {
public:
    explicit Module(ClientOptions options);

    Client& client() noexcept { return client_; }
    // Whether the agent answers now (connects if needed).
    bool agent_present();
    // A stable serial number for this agent (a hash of its socket path), 16 characters.
    const std::string& serial() const noexcept { return serial_; }

    // Objects: the table is rebuilt from the agent on every C_FindObjectsInit, so keys that
    // appeared or went away since are seen; handles stay the same for the same object.
    CK_RV refresh_objects();
    std::shared_ptr<const Object> object(CK_OBJECT_HANDLE handle) const;
    std::vector<CK_OBJECT_HANDLE> matching(std::span<const CK_ATTRIBUTE> tmpl) const;

    // Sessions.
    CK_RV open_session(CK_FLAGS flags, CK_SESSION_HANDLE& out);
    std::shared_ptr<Session> session(CK_SESSION_HANDLE handle) const;
    CK_RV close_session(CK_SESSION_HANDLE handle);
    void close_all_sessions();
    size_t session_count(bool rw_only) const;
    std::atomic<bool> logged_in{false};

    // Signing in `s` (its mutex held by the caller): the signature of `digest_or_input`
    // (what the mechanism turned the caller's data into) into `out`, under the two-call
    // size convention. Ends the operation unless the answer was a size.
    CK_RV sign_init(Session& s, const CK_MECHANISM& mechanism, CK_OBJECT_HANDLE key);
    CK_RV sign(Session& s, std::span<const uint8_t> data, CK_BYTE_PTR out, CK_ULONG_PTR out_len);
    CK_RV sign_update(Session& s, std::span<const uint8_t> data);
    CK_RV sign_final(Session& s, CK_BYTE_PTR out, CK_ULONG_PTR out_len);

private:
    // Turns the finished input into (scheme, digest) and asks the agent.
    CK_RV sign_prepared(Session& s, std::span<const uint8_t> hash_or_input, CK_BYTE_PTR out, CK_ULONG_PTR out_len);

    Client client_;
    std::string serial_;

    mutable std::mutex objects_mutex_;
    std::map<std::string, CK_OBJECT_HANDLE> handle_of_identity_;
    std::unordered_map<CK_OBJECT_HANDLE, std::shared_ptr<const Object>> objects_;
    CK_OBJECT_HANDLE next_object_ = 1;

    mutable std::mutex sessions_mutex_;
    std::unordered_map<CK_SESSION_HANDLE, std::shared_ptr<Session>> sessions_;
    CK_SESSION_HANDLE next_session_ = 1;
};

// Debug output on stderr when KEYWARD_PKCS11_DEBUG=1: the module runs inside other
// people's programs and stays silent otherwise.
void debug_report(std::string_view message) noexcept;

}  // namespace keyward::p11module
