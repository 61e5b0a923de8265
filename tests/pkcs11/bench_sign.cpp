// Not run by default (hidden tag): backend sign throughput against direct C_Sign on the same
// token, for the performance bar (the agent must reach 0.85 of direct). Run with
//   test_pkcs11 "[.bench]"
#include <catch2/catch.hpp>

#include <dlfcn.h>

#include <p11-kit/pkcs11.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "pkcs11/module.hpp"
#include "tests/pkcs11/softhsm_token.hpp"
#include "tests/pkcs11/verify.hpp"

using namespace keyward;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kDuration = std::chrono::milliseconds(1500);

template <typename Fn>
double rate(int threads, Fn&& sign_once) {
    std::atomic<long> total{0};
    std::vector<std::thread> pool;
    const auto end = Clock::now() + kDuration;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            long n = 0;
            while (Clock::now() < end) {
                sign_once(t);
                ++n;
            }
            total += n;
        });
    for (auto& th : pool) th.join();
    return total.load() / std::chrono::duration<double>(kDuration).count();
}

}  // namespace

TEST_CASE("bench: backend sign vs direct C_Sign (ECDSA P-256)", "[.bench]") {
    test::SoftHsmToken token("bench");
    auto opened = pkcs11::open_backend(token.config(2));
    REQUIRE(opened.ok());
    auto& backend = *opened.value();
    REQUIRE(backend.generate("b", KeyType::ec_p256).ok());
    const auto digest = test::random_bytes(32);

    void* h = ::dlopen(test::kSoftHsmModule, RTLD_NOW | RTLD_LOCAL);
    CK_FUNCTION_LIST* f = nullptr;
    reinterpret_cast<CK_C_GetFunctionList>(::dlsym(h, "C_GetFunctionList"))(&f);
    CK_ULONG n = 8;
    CK_SLOT_ID slots[8];
    f->C_GetSlotList(CK_TRUE, slots, &n);
    CK_SLOT_ID slot = slots[0];
    for (CK_ULONG i = 0; i < n; ++i) {
        CK_TOKEN_INFO ti{};
        f->C_GetTokenInfo(slots[i], &ti);
        if (pkcs11::padded_field(ti.label, sizeof ti.label) == "bench") slot = slots[i];
    }
    CK_SESSION_HANDLE sessions[2];
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    for (auto& s : sessions) REQUIRE(f->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &s) == CKR_OK);
    {
        CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
        CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, (void*)"b", 1}};
        CK_ULONG got = 0;
        f->C_FindObjectsInit(sessions[0], tmpl, 2);
        f->C_FindObjects(sessions[0], &key, 1, &got);
        f->C_FindObjectsFinal(sessions[0]);
        REQUIRE(got == 1);
    }
    auto direct = [&](int t) {
        CK_MECHANISM mech{CKM_ECDSA, nullptr, 0};
        unsigned char sig[64];
        CK_ULONG len = sizeof sig;
        f->C_SignInit(sessions[t], &mech, key);
        f->C_Sign(sessions[t], const_cast<uint8_t*>(digest.data()), 32, sig, &len);
    };
    auto ours = [&](int) { (void)backend.sign("b", ipc::Scheme::ecdsa_secp256r1_sha256, digest); };
    for (int threads : {1, 2}) {
        const double d = rate(threads, direct);
        const double b = rate(threads, ours);
        std::printf("threads %d: direct %.0f/s, backend %.0f/s, ratio %.3f\n", threads, d, b, b / d);
        CHECK(b / d > 0.85);
    }
    for (auto& s : sessions) f->C_CloseSession(s);
    ::dlclose(h);
}
