// A client connection as the server's event loop and its executor threads share it
// (private to agent/: server.cpp runs the loop, request_handlers.cpp answers requests).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "agent/policy.hpp"

namespace keyward::agent {

struct EventLoop;

// One client connection. Its event loop owns the input side; the output buffer is shared
// with the executor threads that write answers, hence its mutex.
struct Connection {
    Connection(uint64_t id_, int fd_, Caller caller_, EventLoop* loop_)
            : id(id_), fd(fd_), caller(caller_), loop(loop_) {}
    ~Connection() { ::close(fd); }  // only when the last answer in flight let go of it

    const uint64_t id;
    const int fd;
    const Caller caller;
    EventLoop* const loop;  // the loop that owns it: it outlives every connection (~Server)

    std::vector<uint8_t> in;  // event loop only
    // Event loop only: when a byte last arrived, and when the frame now in `in` began (the
    // read timeout closes a connection that leaves a frame half sent).
    std::chrono::steady_clock::time_point last_activity = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point frame_started = last_activity;
    bool reading_paused = false;
    bool close_when_flushed = false;

    std::mutex out_mu;
    std::vector<uint8_t> out;
    size_t out_off = 0;
    bool closed = false;
    bool want_write = false;

    std::atomic<uint32_t> in_flight{0};
    // out.size() - out_off, kept beside the buffer so that the event loop can apply
    // back-pressure without taking out_mu (which executor threads hold while they send).
    std::atomic<size_t> queued_output{0};
};

// "uid=1000 pid=4242", for log lines about a caller.
inline std::string who(const Connection& c) {
    return "uid=" + std::to_string(c.caller.uid()) + " pid=" + std::to_string(c.caller.pid());
}

// Each new time weighs half: a key proves itself fast (or slow) within a few signatures,
// and a single fast one does not make a slow key fast (600 µs and then 50 µs is 325).
// Relaxed races between threads only blur the average.
inline void note_sign_time(std::atomic<uint32_t>& average, std::chrono::steady_clock::duration took) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(took).count();
    const uint32_t now = static_cast<uint32_t>(std::clamp<int64_t>(us, 0, UINT32_MAX - 1));
    const uint32_t was = average.load(std::memory_order_relaxed);
    average.store(was == UINT32_MAX ? now : static_cast<uint32_t>((uint64_t{was} + now) / 2),
                  std::memory_order_relaxed);
}

}  // namespace keyward::agent
