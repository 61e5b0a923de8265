#include "pkcs11/card_deadline.hpp"

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "core/log.hpp"

namespace keyward::pkcs11 {

std::string deadline_text(std::chrono::milliseconds timeout) {
    const auto ms = timeout.count();
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
    std::string frac = std::to_string(ms % 1000);
    frac.insert(0, 3 - frac.size(), '0');
    while (frac.back() == '0') frac.pop_back();
    return std::to_string(ms / 1000) + "." + frac + " s";
}

namespace {

struct Job {
    std::function<void()> run;
    std::shared_ptr<std::atomic<bool>> abandoned;  // its caller gave up: not sent to the card
};

// Shared by the backend and its card thread: the thread may outlive the backend while a
// call is stuck, and then owns what it still needs.
struct CardThread {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Job> jobs;
    bool stopping = false;
    bool busy = false;   // a call is on the card
    bool stuck = false;  // a caller gave up waiting for the call on the card
    std::mutex hook_mu;  // guards on_answering, cleared when the backend goes
    std::function<void()> on_answering;

    void loop() {
        std::unique_lock lock(mu);
        for (;;) {
            cv.wait(lock, [&] { return stopping || !jobs.empty(); });
            if (stopping) return;
            Job job = std::move(jobs.front());
            jobs.pop_front();
            if (job.abandoned->load()) continue;
            busy = true;
            lock.unlock();
            job.run();
            job = Job{};
            lock.lock();
            busy = false;
            if (stuck) {
                stuck = false;
                lock.unlock();
                std::function<void()> hook;
                {
                    std::lock_guard hook_lock(hook_mu);
                    hook = on_answering;
                }
                // A copy, called unlocked: it may end the backend (and clear the original) here.
                if (hook) hook();
                lock.lock();
            }
        }
    }
};

class DeadlineBackend final : public KeyBackend {
public:
    DeadlineBackend(std::unique_ptr<KeyBackend> inner, CardDeadline deadline)
            : inner_(std::move(inner)), deadline_(std::move(deadline)), card_(std::make_shared<CardThread>()) {
        card_->on_answering = [card = deadline_.card, hook = deadline_.on_answering]() {
            log::notice(card + " answers again; it is used again");
            if (hook) hook();
        };
        thread_ = std::thread([card = card_]() { card->loop(); });
    }

    ~DeadlineBackend() override {
        {
            std::lock_guard hook(card_->hook_mu);
            card_->on_answering = nullptr;
        }
        bool leave = false;
        {
            std::lock_guard lock(card_->mu);
            card_->stopping = true;
            for (auto& job : card_->jobs) job.abandoned->store(true);
            leave = card_->busy;
        }
        card_->cv.notify_all();
        // A call stuck on the card keeps the thread (and, through the call, the inner
        // backend and its module) until the card answers; nobody waits for that.
        if (leave || std::this_thread::get_id() == thread_.get_id()) {
            log::warning(deadline_.card + " is still not answering; its call is left behind");
            thread_.detach();
        } else {
            thread_.join();
        }
    }

    std::string_view kind() const noexcept override { return inner_->kind(); }
    size_t max_concurrency() const noexcept override { return inner_->max_concurrency(); }
    std::string description() const override {
        std::string d = inner_->description();
        if (stuck()) d += ": " + not_answering();
        return d;
    }

    DeviceHealth health() override {
        if (stuck()) return DeviceHealth::error;
        auto r = call<DeviceHealth>([](KeyBackend& b) -> Result<DeviceHealth> { return b.health(); });
        return r.ok() ? r.value() : DeviceHealth::error;
    }
    Result<std::vector<BackendKey>> list_keys() override {
        return call<std::vector<BackendKey>>([](KeyBackend& b) { return b.list_keys(); });
    }
    Result<BackendKey> describe(const std::string& label) override {
        return call<BackendKey>([label](KeyBackend& b) { return b.describe(label); });
    }
    Result<BackendKey> generate(const std::string& label, KeyType type) override {
        return call<BackendKey>([label, type](KeyBackend& b) { return b.generate(label, type); });
    }
    Status destroy(const std::string& label) override {
        auto r = call<bool>([label](KeyBackend& b) -> Result<bool> {
            Status s = b.destroy(label);
            if (!s.ok()) return s;
            return true;
        });
        return r.ok() ? Status{} : r.status();
    }
    Result<BackendKey> import_key(const std::string& label, std::span<const uint8_t> blob) override {
        return call<BackendKey>([label, copy = std::vector<uint8_t>(blob.begin(), blob.end())](KeyBackend& b) {
            return b.import_key(label, copy);
        });
    }
    Result<std::vector<uint8_t>> sign(const std::string& label, Scheme scheme,
                                      std::span<const uint8_t> digest) override {
        return call<std::vector<uint8_t>>([label, scheme, copy = std::vector<uint8_t>(digest.begin(), digest.end())](
                                              KeyBackend& b) { return b.sign(label, scheme, copy); });
    }

private:
    bool stuck() const {
        std::lock_guard lock(card_->mu);
        return card_->stuck;
    }

    std::string not_answering() const {
        return deadline_.card + " did not answer within " + deadline_text(deadline_.timeout) +
               "; it is not used until it answers";
    }

    // Runs `op` on the card thread; everything it uses is copied into the job, since the
    // caller may be gone by the time a stuck card answers.
    template <typename T, typename Op>
    Result<T> call(Op op) {
        auto answer = std::make_shared<std::promise<Result<T>>>();
        auto result = answer->get_future();
        auto abandoned = std::make_shared<std::atomic<bool>>(false);
        {
            std::lock_guard lock(card_->mu);
            if (card_->stuck) return Status{ErrorCode::device_unavailable, not_answering()};
            if (card_->stopping) return Status{ErrorCode::device_unavailable, deadline_.card + " is being closed"};
            card_->jobs.push_back(Job{
                [inner = inner_, answer, op = std::move(op)]() mutable { answer->set_value(op(*inner)); }, abandoned});
        }
        card_->cv.notify_one();
        if (result.wait_for(deadline_.timeout) == std::future_status::ready) return result.get();
        abandoned->store(true);
        {
            std::lock_guard lock(card_->mu);
            // Answered just now, or it had not reached the card yet (another call is stuck).
            if (result.wait_for(std::chrono::seconds(0)) == std::future_status::ready) return result.get();
            if (card_->busy) card_->stuck = true;
        }
        const std::string message = deadline_.card + " did not answer within " + deadline_text(deadline_.timeout);
        log::error(message + "; the token is unavailable until the card answers");
        if (deadline_.on_stuck) deadline_.on_stuck();
        return Status{ErrorCode::device_unavailable, message};
    }

    std::shared_ptr<KeyBackend> inner_;
    CardDeadline deadline_;
    std::shared_ptr<CardThread> card_;
    std::thread thread_;
};

}  // namespace

std::unique_ptr<KeyBackend> with_card_deadline(std::unique_ptr<KeyBackend> inner, CardDeadline deadline) {
    return std::make_unique<DeadlineBackend>(std::move(inner), std::move(deadline));
}

}  // namespace keyward::pkcs11
