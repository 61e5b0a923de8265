// A pool of R/W sessions on one token. A thread takes a session, uses it alone, and gives it
// back; the pool's lock is never held across a device call other than C_OpenSession.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include <p11-kit/pkcs11.h>

namespace keyward::pkcs11 {

class SessionPool;

// One borrowed session; returns itself to the pool when destroyed.
class PooledSession {
public:
    PooledSession() = default;
    PooledSession(PooledSession&& other) noexcept { *this = std::move(other); }
    PooledSession& operator=(PooledSession&& other) noexcept;
    ~PooledSession() { release(); }

    CK_SESSION_HANDLE handle() const noexcept { return handle_; }
    // The session is in an unknown state (e.g. an operation left active): close it, don't reuse it.
    void discard() noexcept { discard_ = true; }

private:
    friend class SessionPool;
    void release() noexcept;

    SessionPool* pool_ = nullptr;
    CK_SESSION_HANDLE handle_ = CK_INVALID_HANDLE;
    uint64_t generation_ = 0;
    bool discard_ = false;
};

class SessionPool {
public:
    SessionPool(CK_FUNCTION_LIST* f, size_t capacity) : f_(f), capacity_(capacity) {}
    ~SessionPool();
    SessionPool(const SessionPool&) = delete;
    SessionPool& operator=(const SessionPool&) = delete;

    // Takes a free session, opens a new one while below capacity, or waits for one.
    CK_RV acquire(PooledSession& out);
    // Starts a new generation of sessions on `slot` (or on nothing while the token is gone):
    // free sessions are closed now, lent ones when they come back.
    void reset(std::optional<CK_SLOT_ID> slot);
    size_t capacity() const noexcept { return capacity_; }

private:
    friend class PooledSession;
    void give_back(CK_SESSION_HANDLE handle, uint64_t generation, bool discard) noexcept;

    CK_FUNCTION_LIST* f_;
    const size_t capacity_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<CK_SESSION_HANDLE> free_;
    std::vector<CK_SESSION_HANDLE> open_;  // sessions of the current generation, free or lent
    uint64_t generation_ = 1;              // bumped by reset()
    CK_SLOT_ID slot_ = 0;
    bool has_slot_ = false;
};

}  // namespace keyward::pkcs11
