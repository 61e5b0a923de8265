#include "agent/executor.hpp"

#include <algorithm>
#include <utility>

#include "core/log.hpp"

namespace keyward::agent {

namespace {
// The executor whose device share the current thread's job holds, until it gives it back.
thread_local Executor* t_share_of = nullptr;
}  // namespace

Executor::Executor(std::string name, size_t threads, size_t max_queued)
        : name_(std::move(name)), max_queued_(max_queued) {
    if (threads == 0) threads = 1;
    for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

Executor::~Executor() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
}

bool Executor::try_submit(std::function<void()> job, Owner owner) {
    {
        std::lock_guard lock(mu_);
        if (stopping_ || queued_ >= max_queued_) return false;
        auto& mine = queues_[owner];
        if (mine.size() >= std::max<size_t>(1, max_queued_ / 2)) {
            if (mine.empty()) queues_.erase(owner);
            return false;
        }
        if (mine.empty()) turns_.push_back(owner);
        mine.push_back(std::move(job));
        ++queued_;
    }
    cv_.notify_one();
    return true;
}

void Executor::run() {
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lock(mu_);
            // A free share of the device, not just a free worker: a caller may hold one.
            cv_.wait(lock, [&] { return (stopping_ && queued_ == 0) || (queued_ > 0 && running_ < threads_.size()); });
            if (queued_ == 0) return;  // stopping and drained
            const Owner owner = turns_.front();
            turns_.pop_front();
            auto it = queues_.find(owner);
            job = std::move(it->second.front());
            it->second.pop_front();
            if (it->second.empty()) queues_.erase(it);
            else turns_.push_back(owner);  // its next job waits for everyone else's turn
            --queued_;
            ++running_;
        }
        t_share_of = this;
        try {
            job();
        } catch (const std::exception& e) {
            log::error("executor " + name_ + ": job failed: " + e.what());
        }
        job = nullptr;
        release_device_share();
    }
}

bool Executor::take_share_here() {
    std::lock_guard lock(mu_);
    if (stopping_ || queued_ > 0 || running_ >= threads_.size()) return false;
    ++running_;
    t_share_of = this;
    return true;
}

void Executor::release_device_share() noexcept {
    if (Executor* e = std::exchange(t_share_of, nullptr)) e->finished_running();
}

void Executor::finished_running() noexcept {
    bool wake;
    {
        std::lock_guard lock(mu_);
        --running_;
        wake = queued_ > 0;
    }
    if (wake) cv_.notify_one();
}

}  // namespace keyward::agent
