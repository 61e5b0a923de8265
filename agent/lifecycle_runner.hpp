// Runs the certificate lifecycle on a thread of its own: requests from clients and the
// periodic renewal check are serialised there, so renewals may block on the network and
// on devices without ever stalling the event loop.
#pragma once

#include <functional>
#include <memory>

#include "agent/executor.hpp"
#include "agent/key_registry.hpp"
#include "agent/lifecycle/lifecycle.hpp"

namespace keyward::agent {

// Device access for the lifecycle, through the tokens' executors (blocks the caller).
lifecycle::KeyAccess make_key_access(std::shared_ptr<KeyRegistry> registry);

class LifecycleRunner {
public:
    explicit LifecycleRunner(std::unique_ptr<lifecycle::Lifecycle> lifecycle);
    // Returns at once: a reload replaces the runner on the event loop, which must not wait
    // for a renewal in flight. The retired lifecycle finishes its work on a thread of its
    // own (the next lifecycle waits for it on the identity locks).
    ~LifecycleRunner();

    // Runs `job` on the lifecycle thread; false when the queue is full.
    bool submit(std::function<void(lifecycle::Lifecycle&)> job);

    // When the agent stops, after the last runner was retired: asks every retired
    // lifecycle to give up its work in progress (Lifecycle::cancel) and waits for them.
    static void stop_retired();

    struct Core;  // defined in the .cpp

private:
    std::shared_ptr<Core> core_;
};

}  // namespace keyward::agent
