// The per-operation deadline of card tokens (pkcs11/card_deadline), against a backend whose
// "card" answers when the test lets it: no device, no timing beyond the deadline itself.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "pkcs11/card_deadline.hpp"

using namespace std::chrono_literals;
using keyward::BackendKey;
using keyward::DeviceHealth;
using keyward::ErrorCode;
using keyward::KeyBackend;
using keyward::KeyType;
using keyward::Result;
using keyward::Scheme;
using keyward::Status;

namespace {

// A card that answers at once, or holds every call while `stalled` until released.
struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool stalled = false;
    int calls = 0;  // calls that reached the card
    int signed_digests = 0;

    void pass() {
        std::unique_lock lock(mu);
        ++calls;
        cv.wait(lock, [&] { return !stalled; });
    }
    void set_stalled(bool s) {
        {
            std::lock_guard lock(mu);
            stalled = s;
        }
        cv.notify_all();
    }
    int count() {
        std::lock_guard lock(mu);
        return calls;
    }
};

class GatedBackend final : public KeyBackend {
public:
    explicit GatedBackend(std::shared_ptr<Gate> gate, std::shared_ptr<std::atomic<bool>> gone)
            : gate_(std::move(gate)), gone_(std::move(gone)) {}
    ~GatedBackend() override { gone_->store(true); }
    std::string_view kind() const noexcept override { return "pkcs11"; }
    std::string description() const override { return "gated card"; }
    size_t max_concurrency() const noexcept override { return 1; }
    DeviceHealth health() override {
        gate_->pass();
        return DeviceHealth::present;
    }
    Result<std::vector<BackendKey>> list_keys() override {
        gate_->pass();
        return std::vector<BackendKey>{};
    }
    Result<BackendKey> describe(const std::string&) override { return Status{ErrorCode::no_such_key, "none"}; }
    Result<BackendKey> generate(const std::string&, KeyType) override {
        return Status{ErrorCode::invalid_argument, "no"};
    }
    Status destroy(const std::string&) override { return {}; }
    Result<std::vector<uint8_t>> sign(const std::string&, Scheme, std::span<const uint8_t> digest) override {
        gate_->pass();
        return std::vector<uint8_t>(digest.begin(), digest.end());
    }

private:
    std::shared_ptr<Gate> gate_;
    std::shared_ptr<std::atomic<bool>> gone_;
};

struct Fixture {
    std::shared_ptr<Gate> gate = std::make_shared<Gate>();
    std::shared_ptr<std::atomic<bool>> inner_gone = std::make_shared<std::atomic<bool>>(false);
    std::shared_ptr<std::atomic<int>> stuck_calls = std::make_shared<std::atomic<int>>(0);
    std::shared_ptr<std::atomic<int>> answering_calls = std::make_shared<std::atomic<int>>(0);
    std::unique_ptr<KeyBackend> backend;

    explicit Fixture(std::chrono::milliseconds timeout = 300ms) {
        keyward::pkcs11::CardDeadline d;
        d.card = "the card in reader R";
        d.timeout = timeout;
        d.on_stuck = [n = stuck_calls]() { n->fetch_add(1); };
        d.on_answering = [n = answering_calls]() { n->fetch_add(1); };
        backend = keyward::pkcs11::with_card_deadline(std::make_unique<GatedBackend>(gate, inner_gone), d);
    }
    Result<std::vector<uint8_t>> sign() {
        const uint8_t digest[32] = {1, 2, 3};
        return backend->sign("k", Scheme::ecdsa_secp256r1_sha256, digest);
    }
};

template <typename Pred>
bool eventually(Pred pred) {
    for (int i = 0; i < 500; ++i) {
        if (pred()) return true;
        std::this_thread::sleep_for(10ms);
    }
    return pred();
}

}  // namespace

TEST_CASE("a card that answers: the call's result comes back unchanged") {
    Fixture f;
    auto r = f.sign();
    REQUIRE(r.ok());
    CHECK(r.value().size() == 32);
    CHECK(r.value()[2] == 3);
    CHECK(f.backend->health() == DeviceHealth::present);
    CHECK(f.backend->description() == "gated card");
    CHECK(*f.stuck_calls == 0);
}

TEST_CASE("a card that stops answering: the caller gets the deadline error, new calls fail at once") {
    Fixture f;
    f.gate->set_stalled(true);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = f.sign();
    const auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code == ErrorCode::device_unavailable);
    CHECK(r.status().message == "the card in reader R did not answer within 0.3 s");
    CHECK(took >= 300ms);
    CHECK(*f.stuck_calls == 1);

    // Nothing more reaches the card while it keeps the call: the answer is immediate.
    auto again = f.sign();
    REQUIRE_FALSE(again.ok());
    CHECK(again.status().message.find("did not answer within 0.3 s") != std::string::npos);
    CHECK(f.backend->health() == DeviceHealth::error);
    CHECK(f.backend->description().find("did not answer within 0.3 s; it is not used until it answers") !=
          std::string::npos);
    CHECK(f.gate->count() == 1);

    // It answers: used again, and the hook says so once.
    f.gate->set_stalled(false);
    REQUIRE(eventually([&] { return f.answering_calls->load() == 1; }));
    auto later = f.sign();
    CHECK(later.ok());
    CHECK(f.backend->health() == DeviceHealth::present);
}

TEST_CASE("calls queued behind a stuck one whose callers gave up never reach the card") {
    Fixture f;
    f.gate->set_stalled(true);
    std::thread first([&] { (void)f.sign(); });
    REQUIRE(eventually([&] { return f.gate->count() == 1; }));  // the first is on the card
    std::thread second([&] { (void)f.sign(); });                // queued behind it
    first.join();
    second.join();
    f.gate->set_stalled(false);
    REQUIRE(eventually([&] { return f.answering_calls->load() == 1; }));
    std::this_thread::sleep_for(50ms);
    CHECK(f.gate->count() == 1);
    CHECK(f.sign().ok());
    CHECK(f.gate->count() == 2);
}

TEST_CASE("a backend dropped while its card is stuck does not wait for the card") {
    Fixture f;
    f.gate->set_stalled(true);
    CHECK_FALSE(f.sign().ok());
    const auto t0 = std::chrono::steady_clock::now();
    f.backend.reset();
    CHECK(std::chrono::steady_clock::now() - t0 < 200ms);
    CHECK_FALSE(*f.inner_gone);  // the stuck call still uses it
    f.gate->set_stalled(false);
    REQUIRE(eventually([&] { return f.inner_gone->load(); }));  // released by the card's thread
    CHECK(*f.answering_calls == 0);                             // the hook went with the backend
}

TEST_CASE("deadlines are said in seconds") {
    using keyward::pkcs11::deadline_text;
    CHECK(deadline_text(15000ms) == "15 s");
    CHECK(deadline_text(1500ms) == "1.5 s");
    CHECK(deadline_text(250ms) == "0.25 s");
    CHECK(deadline_text(1001ms) == "1.001 s");
}
