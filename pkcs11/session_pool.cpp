#include "pkcs11/session_pool.hpp"

#include <algorithm>
#include <utility>

namespace keyward::pkcs11 {

PooledSession& PooledSession::operator=(PooledSession&& other) noexcept {
    if (this != &other) {
        release();
        pool_ = std::exchange(other.pool_, nullptr);
        handle_ = std::exchange(other.handle_, CK_INVALID_HANDLE);
        generation_ = other.generation_;
        discard_ = std::exchange(other.discard_, false);
    }
    return *this;
}

void PooledSession::release() noexcept {
    if (pool_) pool_->give_back(handle_, generation_, discard_);
    pool_ = nullptr;
    handle_ = CK_INVALID_HANDLE;
    discard_ = false;
}

SessionPool::~SessionPool() {
    std::lock_guard lock(mu_);
    for (CK_SESSION_HANDLE h : open_) f_->C_CloseSession(h);
}

CK_RV SessionPool::acquire(PooledSession& out) {
    std::unique_lock lock(mu_);
    for (;;) {
        if (!free_.empty()) {
            out.release();
            out.pool_ = this;
            out.handle_ = free_.back();
            out.generation_ = generation_;
            free_.pop_back();
            return CKR_OK;
        }
        if (open_.size() < capacity_) break;
        cv_.wait(lock);
    }
    if (!has_slot_) return CKR_TOKEN_NOT_PRESENT;
    // Opening is rare (pool growth, after a recovery); holding the lock keeps the count honest.
    CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
    const CK_RV rv = f_->C_OpenSession(slot_, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &h);
    if (rv != CKR_OK) return rv;
    open_.push_back(h);
    out.release();
    out.pool_ = this;
    out.handle_ = h;
    out.generation_ = generation_;
    return CKR_OK;
}

void SessionPool::give_back(CK_SESSION_HANDLE handle, uint64_t generation, bool discard) noexcept {
    {
        std::lock_guard lock(mu_);
        if (generation != generation_) {
            // Lent before a reset: close it now that nobody uses it. If a module reused the
            // number for one of the current sessions, the old session is long gone: leave it.
            if (std::find(open_.begin(), open_.end(), handle) == open_.end()) f_->C_CloseSession(handle);
            return;
        }
        if (discard) {
            f_->C_CloseSession(handle);
            std::erase(open_, handle);
        } else {
            free_.push_back(handle);
        }
    }
    cv_.notify_one();
}

void SessionPool::reset(std::optional<CK_SLOT_ID> slot) {
    {
        std::lock_guard lock(mu_);
        // Only free sessions are closed here: closing a session while another thread is inside
        // C_Sign on it crashes some modules (SoftHSM 2.6 frees the operation under it). Lent
        // sessions are closed when they come back. Other users of the module keep theirs.
        for (CK_SESSION_HANDLE h : free_) f_->C_CloseSession(h);
        open_.clear();
        free_.clear();
        ++generation_;
        has_slot_ = slot.has_value();
        slot_ = slot.value_or(0);
        free_.reserve(capacity_);
        open_.reserve(capacity_);
    }
    cv_.notify_all();
}

}  // namespace keyward::pkcs11
