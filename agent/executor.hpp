// A fixed pool of worker threads with a bounded queue: the place where device work runs.
// A TPM or a smartcard gets one worker (they are single-threaded devices); an HSM as many
// as it has sessions. A full queue refuses work instead of growing without bound.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace keyward::agent {

class Executor {
public:
    // Whose work a job is: a caller's uid, or the agent's own work (the lifecycle).
    using Owner = uint32_t;
    static constexpr Owner kAgentWork = UINT32_MAX;

    // `max_queued` bounds the queue; one owner may fill at most half of it.
    Executor(std::string name, size_t threads, size_t max_queued);
    ~Executor();  // finishes queued work, then joins
    Executor(const Executor&) = delete;
    Executor& operator=(const Executor&) = delete;

    // False when the queue (or the owner's share of it) is full or the executor is stopping:
    // answer "busy". Queued work is served round-robin between owners, so one owner's
    // flood waits behind itself instead of in front of everyone else.
    bool try_submit(std::function<void()> job, Owner owner = kAgentWork);
    // Runs `job` on the calling thread when a worker's share of the device is free right now
    // and nothing is queued (queued work goes first); false (job untouched) otherwise, and
    // the caller submits it. Workers and callers together never make more concurrent
    // device calls than there are workers. The event loop uses it to spare a fast
    // signature the hand-off to a worker.
    template <typename Job>
    bool try_run_here(Job& job) {
        if (!take_share_here()) return false;
        struct Release {
            ~Release() { release_device_share(); }
        } release;
        job();
        return true;
    }

    // Called by a job that is done with the device but has more to do (write its answer):
    // its share goes back now, so that the next device call need not wait for the rest.
    // Without it the share goes back when the job returns; a second call does nothing.
    static void release_device_share() noexcept;

private:
    void run();
    bool take_share_here();
    void finished_running() noexcept;

    std::string name_;
    size_t max_queued_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::unordered_map<Owner, std::deque<std::function<void()>>> queues_;
    std::deque<Owner> turns_;  // owners with queued work, in the order they are served next
    size_t queued_ = 0;
    size_t running_ = 0;  // jobs running, on workers or on callers' threads
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace keyward::agent
