// A fixed pool of worker threads with a bounded queue: the place where device work runs.
// A TPM or a smartcard gets one worker (they are single-threaded devices); an HSM as many
// as it has sessions. A full queue refuses work instead of growing without bound.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace keyward {

class Executor {
public:
    Executor(std::string name, size_t threads, size_t max_queued);
    ~Executor();  // finishes queued work, then joins
    Executor(const Executor&) = delete;
    Executor& operator=(const Executor&) = delete;

    // False when the queue is full or the executor is stopping: answer "busy".
    bool try_submit(std::function<void()> job);

private:
    void run();

    std::string name_;
    size_t max_queued_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> queue_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace keyward
