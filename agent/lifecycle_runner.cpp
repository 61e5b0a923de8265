#include "agent/lifecycle_runner.hpp"

#include <algorithm>
#include <future>

#include "agent/log.hpp"

namespace keyward {
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
    access.sign = [registry](const std::string& key, ipc::Scheme scheme,
                             std::span<const uint8_t> digest) -> Result<std::vector<uint8_t>> {
        auto entry = registry->find(key);
        if (!entry) return Status{ErrorCode::no_such_key, "no such key: " + key};
        std::vector<uint8_t> copy(digest.begin(), digest.end());
        return on_token<std::vector<uint8_t>>(entry->token, [key, scheme, copy](Token& t) {
            return t.backend->sign(key, scheme, copy);
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
    return access;
}

LifecycleRunner::LifecycleRunner(std::unique_ptr<lifecycle::Lifecycle> lifecycle)
    : lifecycle_(std::move(lifecycle)), executor_("lifecycle", 1, 256), timer_([this] { timer_loop(); }) {}

LifecycleRunner::~LifecycleRunner() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    timer_.join();
    // executor_ (a member) drains and joins before lifecycle_ is destroyed: declared after it.
}

bool LifecycleRunner::submit(std::function<void(lifecycle::Lifecycle&)> job) {
    return executor_.try_submit([this, job = std::move(job)]() { job(*lifecycle_); });
}

void LifecycleRunner::timer_loop() {
    long wait_seconds = 1;  // first check soon after start: expired identities renew at once
    for (;;) {
        {
            std::unique_lock lock(mu_);
            if (cv_.wait_for(lock, std::chrono::seconds(wait_seconds), [this] { return stopping_; })) return;
        }
        auto next = std::make_shared<std::promise<long>>();
        auto answer = next->get_future();
        bool queued = submit([next](lifecycle::Lifecycle& l) {
            try {
                l.tick();
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
            std::lock_guard lock(mu_);
            if (stopping_) return;
        }
        wait_seconds = std::clamp(answer.get(), 1L, 3600L);
    }
}

}  // namespace keyward
