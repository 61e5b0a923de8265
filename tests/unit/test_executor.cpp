// The token executor: bounded queue, and try_run_here, which lets the event loop make a
// fast signature itself without ever exceeding the device's number of workers.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <vector>
#include <thread>

#include "agent/executor.hpp"

using namespace keyward;
using namespace keyward::agent;
using namespace std::chrono_literals;

namespace {

// Waits (bounded) until `pred` holds; the executor's workers run asynchronously.
template <typename Pred>
bool eventually(Pred pred) {
    for (int i = 0; i < 500 && !pred(); ++i) std::this_thread::sleep_for(2ms);
    return pred();
}

}  // namespace

TEST_CASE("executor: try_run_here runs on the caller's thread while a worker is free", "[executor]") {
    Executor ex("test", 2, 8);
    std::thread::id ran_on;
    auto job = [&] { ran_on = std::this_thread::get_id(); };
    REQUIRE(ex.try_run_here(job));
    CHECK(ran_on == std::this_thread::get_id());
}

TEST_CASE("executor: try_run_here refuses while every worker is taken, and again once one is free", "[executor]") {
    Executor ex("test", 1, 8);
    std::promise<void> release;
    auto released = release.get_future().share();
    std::atomic<bool> started{false};
    REQUIRE(ex.try_submit([&, released] {
        started = true;
        released.wait();
    }));
    REQUIRE(eventually([&] { return started.load(); }));
    bool ran = false;
    auto job = [&] { ran = true; };
    CHECK_FALSE(ex.try_run_here(job));
    CHECK_FALSE(ran);
    release.set_value();
    CHECK(eventually([&] { return ex.try_run_here(job); }));
    CHECK(ran);
}

TEST_CASE("executor: a job that is done with the device gives its share back before it returns", "[executor]") {
    Executor ex("test", 1, 8);
    std::promise<void> release;
    auto released = release.get_future().share();
    std::atomic<bool> device_done{false};
    REQUIRE(ex.try_submit([&, released] {
        Executor::release_device_share();
        Executor::release_device_share();  // a second call gives nothing more back
        device_done = true;
        released.wait();  // still writing its answer, say
    }));
    REQUIRE(eventually([&] { return device_done.load(); }));
    bool ran = false;
    auto job = [&] { ran = true; };
    CHECK(ex.try_run_here(job));
    CHECK(ran);
    // The one share is back with the caller's job over, and only one: a job holding it
    // keeps the next caller out.
    std::atomic<bool> inside{false};
    std::promise<void> leave;
    auto left = leave.get_future().share();
    std::thread holder([&] {
        auto hold = [&] {
            inside = true;
            left.wait();
        };
        CHECK(ex.try_run_here(hold));
    });
    REQUIRE(eventually([&] { return inside.load(); }));
    auto other = [] {};
    CHECK_FALSE(ex.try_run_here(other));
    leave.set_value();
    holder.join();
    release.set_value();
}

TEST_CASE("executor: queued work counts as taken", "[executor]") {
    Executor ex("test", 1, 8);
    std::promise<void> release;
    auto released = release.get_future().share();
    std::atomic<int> done{0};
    REQUIRE(ex.try_submit([&, released] {
        released.wait();
        ++done;
    }));
    REQUIRE(ex.try_submit([&] { ++done; }));
    auto job = [] {};
    CHECK_FALSE(ex.try_run_here(job));
    release.set_value();
    REQUIRE(eventually([&] { return done.load() == 2; }));
    CHECK(eventually([&] { return ex.try_run_here(job); }));
}

TEST_CASE("executor: work on workers and on callers never exceeds the number of workers", "[executor]") {
    constexpr size_t kWorkers = 2;
    Executor ex("test", kWorkers, 1024);
    std::atomic<int> running{0}, most{0}, finished{0};
    auto device_call = [&] {
        int now = ++running;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {}
        std::this_thread::sleep_for(50us);
        --running;
        ++finished;
    };
    // Callers and submissions interleave, so that both paths run at once.
    std::atomic<bool> submitting{true};
    std::atomic<int> inline_runs{0};
    std::vector<std::thread> callers;
    for (int t = 0; t < 3; ++t)
        callers.emplace_back([&] {
            while (submitting) {
                auto job = device_call;
                if (ex.try_run_here(job)) ++inline_runs;
                std::this_thread::sleep_for(20us);
            }
        });
    int submitted = 0;
    for (int i = 0; i < 300; ++i) {
        if (ex.try_submit(device_call)) ++submitted;
        std::this_thread::sleep_for(100us);
    }
    submitting = false;
    for (auto& c : callers) c.join();
    REQUIRE(eventually([&] { return finished.load() == submitted + inline_runs.load(); }));
    CHECK(most.load() <= static_cast<int>(kWorkers));
    CHECK(inline_runs.load() > 0);
}

TEST_CASE("executor: queued work is served round-robin between owners", "[executor]") {
    Executor ex("test", 1, 1000);
    std::promise<void> release;
    auto released = release.get_future().share();
    std::atomic<bool> started{false};
    std::mutex mu;
    std::vector<int> order;
    REQUIRE(ex.try_submit(
        [&, released] {
            started = true;
            released.wait();
        },
        1001));
    REQUIRE(eventually([&] { return started.load(); }));
    // One owner floods the queue, then two others ask for one operation each.
    for (int i = 0; i < 100; ++i)
        REQUIRE(ex.try_submit(
            [&, i] {
                std::lock_guard l(mu);
                order.push_back(i);
            },
            1001));
    REQUIRE(ex.try_submit(
        [&] {
            std::lock_guard l(mu);
            order.push_back(-1);
        },
        1002));
    REQUIRE(ex.try_submit(
        [&] {
            std::lock_guard l(mu);
            order.push_back(-2);
        },
        0));
    release.set_value();
    REQUIRE(eventually([&] {
        std::lock_guard l(mu);
        return order.size() == 102;
    }));
    std::lock_guard l(mu);
    // Each of the others waits for at most one of the flood's operations, not a hundred.
    const auto pos = [&](int v) { return std::find(order.begin(), order.end(), v) - order.begin(); };
    CHECK(pos(-1) <= 1);
    CHECK(pos(-2) <= 2);
    // The flood itself keeps its own order.
    std::vector<int> flood;
    for (int v : order)
        if (v >= 0) flood.push_back(v);
    CHECK(std::is_sorted(flood.begin(), flood.end()));
}

TEST_CASE("executor: one owner may fill at most half of the queue", "[executor]") {
    Executor ex("test", 1, 10);
    std::promise<void> release;
    auto released = release.get_future().share();
    std::atomic<bool> started{false};
    REQUIRE(ex.try_submit(
        [&, released] {
            started = true;
            released.wait();
        },
        7));
    REQUIRE(eventually([&] { return started.load(); }));
    int accepted = 0;
    for (int i = 0; i < 10; ++i) accepted += ex.try_submit([] {}, 7);
    CHECK(accepted == 5);
    CHECK(ex.try_submit([] {}, 8));  // another owner still gets in
    release.set_value();
}
