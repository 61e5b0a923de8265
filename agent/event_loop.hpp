// One of the server's event loops (agent/server.hpp): a thread with an epoll set of its
// own and the connections the acceptor gave it. Private to agent/.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "agent/server.hpp"
#include "core/unique_fd.hpp"

namespace keyward::agent {

struct EventLoop {
    explicit EventLoop(size_t index_) : index(index_) {}

    const size_t index;
    UniqueFd epoll;
    // An eventfd in the epoll set: new connections in `inbox`, or time to stop.
    UniqueFd wake;
    std::thread thread;
    std::atomic<bool> stopping{false};
    // Connections in the map plus those in the inbox: what the acceptor balances on.
    std::atomic<size_t> load{0};
    // When the loop last went round (steady clock, ns): read by the watchdog check.
    std::atomic<int64_t> heartbeat{0};

    std::mutex inbox_mu;
    std::vector<std::shared_ptr<Connection>> inbox;

    // Loop thread only from here on.
    std::unordered_map<uint64_t, std::shared_ptr<Connection>> connections;
    std::shared_ptr<const ServingState> state;
    uint64_t state_generation = 0;
    std::chrono::steady_clock::time_point last_sweep{};
    // Set around each request: nothing else is ready on this loop to be read or parsed, so
    // a fast signature may be made on the loop's own thread.
    bool last_ready_event = false;
    bool nothing_queued_behind = false;
};

}  // namespace keyward::agent
