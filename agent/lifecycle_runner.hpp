// Runs the certificate lifecycle on a thread of its own: requests from clients and the
// periodic renewal check are serialised there, so renewals may block on the network and
// on devices without ever stalling the event loop.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "agent/executor.hpp"
#include "agent/key_registry.hpp"
#include "agent/lifecycle/lifecycle.hpp"

namespace keyward {

// Device access for the lifecycle, through the tokens' executors (blocks the caller).
lifecycle::KeyAccess make_key_access(std::shared_ptr<KeyRegistry> registry);

class LifecycleRunner {
public:
    explicit LifecycleRunner(std::unique_ptr<lifecycle::Lifecycle> lifecycle);
    ~LifecycleRunner();  // stops the timer, finishes the job in progress

    // Runs `job` on the lifecycle thread; false when the queue is full.
    bool submit(std::function<void(lifecycle::Lifecycle&)> job);

private:
    void timer_loop();

    std::unique_ptr<lifecycle::Lifecycle> lifecycle_;
    Executor executor_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stopping_ = false;
    std::thread timer_;
};

}  // namespace keyward
