// Recovery without restart: sessions and logins lost under the backend's feet (done for real
// through the same module, as another part of the process or a token reset would), and a PIN
// the token rejects.
#include <catch2/catch.hpp>

#include <dlfcn.h>

#include <p11-kit/pkcs11.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "pkcs11/module.hpp"
#include "tests/pkcs11/softhsm_token.hpp"
#include "tests/pkcs11/verify.hpp"

using namespace keyward;
using keyward::test::random_bytes;
using keyward::test::verify_signature;

namespace {

// The module as the test sees it: the same library, reached through its own dlopen.
struct RawModule {
    void* handle = nullptr;
    CK_FUNCTION_LIST* f = nullptr;

    RawModule() {
        handle = ::dlopen(test::kSoftHsmModule, RTLD_NOW | RTLD_LOCAL);
        REQUIRE(handle);
        auto get = reinterpret_cast<CK_C_GetFunctionList>(::dlsym(handle, "C_GetFunctionList"));
        REQUIRE(get);
        REQUIRE(get(&f) == CKR_OK);
        // The backend initialised it already; we must never finalise it under the backend.
        CK_C_INITIALIZE_ARGS args{};
        args.flags = CKF_OS_LOCKING_OK;
        REQUIRE(f->C_Initialize(&args) == CKR_CRYPTOKI_ALREADY_INITIALIZED);
    }
    ~RawModule() { ::dlclose(handle); }

    CK_SLOT_ID slot_of(const std::string& label) {
        CK_ULONG n = 16;
        CK_SLOT_ID slots[16];
        REQUIRE(f->C_GetSlotList(CK_TRUE, slots, &n) == CKR_OK);
        for (CK_ULONG i = 0; i < n; ++i) {
            CK_TOKEN_INFO ti{};
            if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK) continue;
            if (pkcs11::padded_field(ti.label, sizeof ti.label) == label) return slots[i];
        }
        FAIL("token " << label << " not found");
        return 0;
    }
};

std::vector<uint8_t> sign_ok(KeyBackend& backend, const BackendKey& key) {
    const auto digest = random_bytes(32);
    auto sig = backend.sign(key.label, ipc::Scheme::ecdsa_secp256r1_sha256, digest);
    INFO(sig.status().message);
    REQUIRE(sig.ok());
    CHECK(verify_signature(key.spki, ipc::Scheme::ecdsa_secp256r1_sha256, digest, sig.value()));
    return sig.value();
}

// A backend (`sessions` sessions) on a fresh SoftHSM2 token `label` with one EC P-256 key "k",
// its first signature checked.
struct BackendWithKey {
    test::SoftHsmToken token;
    std::unique_ptr<KeyBackend> owned;
    BackendKey key;

    BackendWithKey(const std::string& label, int sessions) : token(label) {
        auto opened = pkcs11::open_backend(token.config(sessions));
        INFO(opened.status().message);
        REQUIRE(opened.ok());
        owned = std::move(opened).value();
        auto made = owned->generate("k", KeyType::ec_p256);
        INFO(made.status().message);
        REQUIRE(made.ok());
        key = made.value();
        sign_ok(*owned, key);
    }
};

}  // namespace

TEST_CASE("recovery: all sessions closed under the backend", "[recovery]") {
    BackendWithKey fixture("recovery", 2);
    auto& backend = *fixture.owned;
    const BackendKey& key = fixture.key;

    RawModule raw;
    const CK_SLOT_ID slot = raw.slot_of("recovery");
    for (int round = 0; round < 3; ++round) {
        REQUIRE(raw.f->C_CloseAllSessions(slot) == CKR_OK);  // real session loss, login gone with it
        sign_ok(backend, key);
    }
    REQUIRE(raw.f->C_CloseAllSessions(slot) == CKR_OK);
    CHECK(backend.health() == DeviceHealth::present);  // health notices and repairs too
    REQUIRE(raw.f->C_CloseAllSessions(slot) == CKR_OK);
    auto listed = backend.list_keys();
    REQUIRE(listed.ok());
    CHECK(listed.value().size() == 1);
}

// Logins are lost while other threads sign. (Sessions are not closed here while in use:
// SoftHSM 2.6 crashes when a session is closed under a running C_Sign, so no test, and no
// recovery of ours, ever does that.)
TEST_CASE("recovery: login lost while threads are signing", "[recovery][threads]") {
    BackendWithKey fixture("storm", 4);
    auto& backend = *fixture.owned;
    const BackendKey& key = fixture.key;

    RawModule raw;
    const CK_SLOT_ID slot = raw.slot_of("storm");
    std::atomic<bool> stop{false};
    std::atomic<int> good{0}, unavailable{0}, wrong{0};
    std::mutex wrong_mu;
    std::string wrong_what;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            while (!stop.load()) {
                const auto digest = random_bytes(32);
                auto sig = backend.sign("k", ipc::Scheme::ecdsa_secp256r1_sha256, digest);
                if (sig.ok() && verify_signature(key.spki, ipc::Scheme::ecdsa_secp256r1_sha256, digest, sig.value()))
                    ++good;
                else if (!sig.ok() && sig.status().code == ErrorCode::device_unavailable)
                    ++unavailable;  // allowed: the retry itself can be hit by the next loss
                else {
                    std::lock_guard lock(wrong_mu);
                    wrong_what = sig.ok() ? "a signature that does not verify" : sig.status().message;
                    ++wrong;
                }
            }
        });
    CK_SESSION_HANDLE own = CK_INVALID_HANDLE;
    REQUIRE(raw.f->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &own) == CKR_OK);
    int logouts = 0;
    for (int round = 0; round < 10; ++round) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (raw.f->C_Logout(own) == CKR_OK) ++logouts;
    }
    raw.f->C_CloseSession(own);
    CHECK(logouts >= 5);  // the backend logged in again between them
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    stop = true;
    for (auto& th : threads) th.join();
    INFO(wrong_what);
    CHECK(wrong.load() == 0);
    CHECK(good.load() > 0);
    CHECK(unavailable.load() <= good.load() / 10);
    sign_ok(backend, key);  // and afterwards everything works
    CHECK(backend.health() == DeviceHealth::present);
}

TEST_CASE("recovery: the user logged out under the backend", "[recovery]") {
    BackendWithKey fixture("logout", 2);
    auto& backend = *fixture.owned;
    const BackendKey& key = fixture.key;

    RawModule raw;
    const CK_SLOT_ID slot = raw.slot_of("logout");
    auto logout = [&] {
        CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
        REQUIRE(raw.f->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &s) == CKR_OK);
        REQUIRE(raw.f->C_Logout(s) == CKR_OK);  // logs the whole application out of the token
        CK_SESSION_INFO info{};
        REQUIRE(raw.f->C_GetSessionInfo(s, &info) == CKR_OK);
        CHECK(info.state == CKS_RO_PUBLIC_SESSION);
        raw.f->C_CloseSession(s);
    };
    logout();
    sign_ok(backend, key);  // cached handle: the device says not logged in / handle invalid
    logout();
    auto described = backend.describe("k");  // uncached lookups must not mistake "invisible" for "absent"
    INFO(described.status().message);
    REQUIRE(described.ok());
    CHECK(described.value().spki == key.spki);
    logout();
    auto listed = backend.list_keys();
    REQUIRE(listed.ok());
    CHECK(listed.value().size() == 1);
    logout();
    CHECK(backend.health() == DeviceHealth::present);
    sign_ok(backend, key);
}

TEST_CASE("PIN: a rejected PIN gives needs_pin, a clear error without the PIN, and no retry", "[pin]") {
    test::SoftHsmToken token("pin");
    const std::string wrong = "97531864";
    token.write_pin(wrong);
    auto opened = pkcs11::open_backend(token.config(2));
    INFO(opened.status().message);
    REQUIRE(opened.ok());  // the agent needs the backend to report needs-pin
    auto& backend = *opened.value();
    CHECK(backend.health() == DeviceHealth::needs_pin);

    auto sig = backend.sign("k", ipc::Scheme::ecdsa_secp256r1_sha256, random_bytes(32));
    REQUIRE(!sig.ok());
    CHECK(sig.status().code == ErrorCode::device_unavailable);
    CHECK_THAT(sig.status().message, Catch::Contains(token.pin_file()) && Catch::Contains("rejected") &&
                                         Catch::Contains("CKR_PIN_INCORRECT"));
    CHECK(sig.status().message.find(wrong) == std::string::npos);
    CHECK(sig.status().message.find(test::kUserPin) == std::string::npos);
    auto listed = backend.list_keys();
    REQUIRE(!listed.ok());
    CHECK(listed.status().message.find(wrong) == std::string::npos);
    CHECK(backend.health() == DeviceHealth::needs_pin);

    // Same file, same content: still refused, and refused by us (the token is not asked again).
    // SoftHSM has no retry counter to observe, so the proof is the message staying the same.
    auto again = backend.generate("k", KeyType::ec_p256);
    REQUIRE(!again.ok());
    CHECK_THAT(again.status().message, Catch::Contains("not tried again"));

    // The operator fixes the file: the next use logs in and works.
    token.write_pin(test::kUserPin);
    CHECK(backend.health() == DeviceHealth::present);
    auto key = backend.generate("k", KeyType::ec_p256);
    INFO(key.status().message);
    REQUIRE(key.ok());
    sign_ok(backend, key.value());
}

TEST_CASE("PIN: a missing PIN file is reported, not fatal", "[pin]") {
    test::SoftHsmToken token("nopin");
    auto config = token.config(2);
    config.pin_file = token.dir() + "/missing.pin";
    auto opened = pkcs11::open_backend(config);
    REQUIRE(opened.ok());
    CHECK(opened.value()->health() == DeviceHealth::needs_pin);
    auto listed = opened.value()->list_keys();
    REQUIRE(!listed.ok());
    CHECK_THAT(listed.status().message, Catch::Contains("missing.pin"));
}
