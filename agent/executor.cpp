#include "agent/executor.hpp"

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

bool Executor::try_submit(std::function<void()> job) {
    {
        std::lock_guard lock(mu_);
        if (stopping_ || queue_.size() >= max_queued_) return false;
        queue_.push_back(std::move(job));
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
            cv_.wait(lock, [&] { return (stopping_ && queue_.empty()) || (!queue_.empty() && running_ < threads_.size()); });
            if (queue_.empty()) return;  // stopping and drained
            job = std::move(queue_.front());
            queue_.pop_front();
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
    if (stopping_ || !queue_.empty() || running_ >= threads_.size()) return false;
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
        wake = !queue_.empty();
    }
    if (wake) cv_.notify_one();
}

}  // namespace keyward::agent
