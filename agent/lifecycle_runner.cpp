#include "agent/lifecycle_runner.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "agent/metrics.hpp"
#include "core/log.hpp"

namespace keyward::agent {
namespace {

// Runs `work` on the key's token executor and waits for it: the lifecycle thread may block,
// device access still goes through the one place that serialises each device.
template <typename T, typename Work>
Result<T> on_token(const std::shared_ptr<Token>& token, Work work) {
    auto done = std::make_shared<std::promise<Result<T>>>();
    auto answer = done->get_future();
    Token* t = token.get();
    if (!t->executor->try_submit([done, t, work]() { done->set_value(work(*t)); }))
        return Status{ErrorCode::busy, "token " + t->name + " is saturated"};
    return answer.get();
}

}  // namespace

lifecycle::KeyAccess make_key_access(std::shared_ptr<KeyRegistry> registry) {
    lifecycle::KeyAccess access;
    access.describe = [registry](const std::string& key) -> Result<ipc::KeyInfo> {
        auto entry = registry->find(key);
        if (!entry) return Status{ErrorCode::no_such_key, "no such key: " + key};
        return entry->info;
    };
    access.sign = [registry](const std::string& key, Scheme scheme,
                             std::span<const uint8_t> digest) -> Result<std::vector<uint8_t>> {
        auto entry = registry->find(key);
        if (!entry) return Status{ErrorCode::no_such_key, "no such key: " + key};
        std::vector<uint8_t> copy(digest.begin(), digest.end());
        // Counted like a client's signature: the metrics and `keyward status` show every use
        // of a key, the agent's own (CSRs, ACME and CMP messages) included.
        return on_token<std::vector<uint8_t>>(entry->token, [key, scheme, copy](Token& t) {
            const auto started = std::chrono::steady_clock::now();
            auto sig = t.backend->sign(key, scheme, copy);
            metrics::signing_counters().signature(key, std::chrono::steady_clock::now() - started, sig.ok());
            return sig;
        });
    };
    access.generate = [registry](const std::string& key, const std::string& type,
                                 const std::string& token_name) -> Result<ipc::KeyInfo> {
        auto kt = key_type_from_name(type);
        if (!kt) return Status{ErrorCode::invalid_argument, "unknown key type " + type};
        auto target = registry->target_for_new_key(key, token_name);
        if (!target.ok()) return target.status();
        auto token = std::move(target).value();
        auto made = on_token<BackendKey>(token, [key, kt](Token& t) { return t.backend->generate(key, *kt); });
        if (!made.ok()) return made.status();
        ipc::KeyInfo info = to_key_info(made.value(), token->name);
        registry->add(token, info);
        return info;
    };
    access.destroy = [registry](const std::string& key) -> Status {
        auto entry = registry->find(key);
        if (!entry) return {ErrorCode::no_such_key, "no such key: " + key};
        auto done = on_token<bool>(entry->token, [key](Token& t) -> Result<bool> {
            Status s = t.backend->destroy(key);
            if (!s.ok()) return s;
            return true;
        });
        if (done.ok()) registry->remove(key);
        return done.status();
    };
    access.remove_orphan = [registry](const std::string& key, const std::string& token_name) -> Status {
        if (registry->find(key))
            return {ErrorCode::key_exists, "key " + key + " is in use; it is not an orphan to remove"};
        auto token = registry->token(token_name);
        if (!token)
            return {ErrorCode::invalid_argument,
                    "no token named " + (token_name.empty() ? std::string("(default)") : token_name)};
        auto done = on_token<bool>(token, [key](Token& t) -> Result<bool> {
            Status s = t.backend->destroy(key);
            if (!s.ok()) return s;
            return true;
        });
        return done.status();
    };
    return access;
}

// The lifecycle, its thread (an executor of one) and the timer that asks it to check
// renewals; the LifecycleRunner handle only owns a reference.
struct LifecycleRunner::Core {
    std::unique_ptr<lifecycle::Lifecycle> lifecycle;
    Executor executor{"lifecycle", 1, 256};  // after `lifecycle`: drained and joined before it goes
    std::mutex mu;
    std::condition_variable cv;
    bool stopping = false;
    std::thread timer;

    explicit Core(std::unique_ptr<lifecycle::Lifecycle> l) : lifecycle(std::move(l)) {}

    ~Core() {
        {
            std::lock_guard lock(mu);
            stopping = true;
        }
        cv.notify_all();
        if (timer.joinable()) timer.join();
        // executor (a member) drains and joins before lifecycle is destroyed.
    }

    bool submit(std::function<void(lifecycle::Lifecycle&)> job) {
        return executor.try_submit([this, job = std::move(job)]() { job(*lifecycle); });
    }

    void timer_loop();
};

namespace {

// A retired core, finished (stopped, drained, destroyed) by a thread of its own.
struct RetiredCore {
    std::weak_ptr<LifecycleRunner::Core> core;  // to cancel it while it finishes
    std::shared_ptr<std::atomic<bool>> done;
    std::thread thread;
};

struct Retired {
    std::mutex mu;
    std::vector<RetiredCore> cores;
};

Retired& retired() {
    static Retired* r = new Retired;  // never destroyed: its threads may outlive static destruction
    return *r;
}

}  // namespace

LifecycleRunner::LifecycleRunner(std::unique_ptr<lifecycle::Lifecycle> lifecycle)
        : core_(std::make_shared<Core>(std::move(lifecycle))) {
    Core* core = core_.get();
    core_->timer = std::thread([core] { core->timer_loop(); });
}

LifecycleRunner::~LifecycleRunner() {
    Retired& r = retired();
    std::lock_guard lock(r.mu);
    // Reap the threads that are done (one per earlier reload).
    for (auto it = r.cores.begin(); it != r.cores.end();) {
        if (it->done->load()) {
            it->thread.join();
            it = r.cores.erase(it);
        } else {
            ++it;
        }
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    std::weak_ptr<Core> weak = core_;
    std::thread finisher([core = std::move(core_), done]() mutable {
        core.reset();
        done->store(true);
    });
    r.cores.push_back({std::move(weak), std::move(done), std::move(finisher)});
}

void LifecycleRunner::stop_retired() {
    Retired& r = retired();
    std::vector<RetiredCore> cores;
    {
        std::lock_guard lock(r.mu);
        cores.swap(r.cores);
    }
    for (auto& c : cores)
        if (auto core = c.core.lock()) core->lifecycle->cancel();  // may make this thread the one that destroys it
    for (auto& c : cores) c.thread.join();
}

bool LifecycleRunner::submit(std::function<void(lifecycle::Lifecycle&)> job) { return core_->submit(std::move(job)); }

void LifecycleRunner::Core::timer_loop() {
    long wait_seconds = 1;  // first check soon after start: expired identities renew at once
    for (;;) {
        {
            std::unique_lock lock(mu);
            if (cv.wait_for(lock, std::chrono::seconds(wait_seconds), [this] { return stopping; })) return;
        }
        auto next = std::make_shared<std::promise<long>>();
        auto answer = next->get_future();
        bool queued = submit([next](lifecycle::Lifecycle& l) {
            try {
                l.tick();
                if (auto v = l.list_json(); v.ok()) metrics::identity_board().publish(v.value());
                next->set_value(l.next_tick_seconds());
            } catch (const std::exception& e) {
                log::error(std::string("renewal check failed: ") + e.what());
                next->set_value(60);
            }
        });
        if (!queued) {
            wait_seconds = 5;
            continue;
        }
        // Wait for the check, but stay responsive to shutdown.
        while (answer.wait_for(std::chrono::milliseconds(200)) != std::future_status::ready) {
            std::lock_guard lock(mu);
            if (stopping) return;
        }
        wait_seconds = std::clamp(answer.get(), 1L, 3600L);
    }
}

}  // namespace keyward::agent
