// Not run by default (hidden tag): ECDSA P-256 signs per second on swtpm, in-process ESAPI
// (load once, Esys_Sign in a loop) against the backend's sign(). Run with
//   test_tpm "[.bench]"
#include <catch2/catch.hpp>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "tests/tpm/swtpm.hpp"
#include "tpm/public_key.hpp"
#include "tpm/tpm_backend.hpp"

using namespace keyward;
using Clock = std::chrono::steady_clock;

namespace {
constexpr auto kDuration = std::chrono::milliseconds(2000);

template <typename Fn>
double rate(Fn&& once) {
    long n = 0;
    const auto start = Clock::now();
    while (Clock::now() - start < kDuration) {
        once();
        ++n;
    }
    return n / std::chrono::duration<double>(Clock::now() - start).count();
}
}  // namespace

TEST_CASE("bench: ECDSA P-256 on swtpm, raw ESAPI vs backend", "[.bench]") {
    test::Swtpm tpm;
    TSS2_TCTI_CONTEXT* tcti = nullptr;
    ESYS_CONTEXT* ctx = nullptr;
    REQUIRE(Tss2_TctiLdr_Initialize(tpm.tcti().c_str(), &tcti) == TSS2_RC_SUCCESS);
    REQUIRE(Esys_Initialize(&ctx, tcti, nullptr) == TSS2_RC_SUCCESS);
    TPM2B_SENSITIVE_CREATE sensitive{};
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION pcrs{};
    const TPM2B_PUBLIC primary_tmpl = tpm::storage_primary_template();
    ESYS_TR primary = ESYS_TR_NONE, key = ESYS_TR_NONE;
    REQUIRE(Esys_CreatePrimary(ctx, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive,
                               &primary_tmpl, &outside, &pcrs, &primary, nullptr, nullptr, nullptr, nullptr) == 0);
    const TPM2B_PUBLIC tmpl = *tpm::signing_key_template(KeyType::ec_p256);
    TPM2B_PRIVATE* priv = nullptr;
    TPM2B_PUBLIC* pub = nullptr;
    REQUIRE(Esys_Create(ctx, primary, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &tmpl, &outside, &pcrs,
                        &priv, &pub, nullptr, nullptr, nullptr) == 0);
    REQUIRE(Esys_Load(ctx, primary, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, priv, pub, &key) == 0);
    Esys_FlushContext(ctx, primary);
    Esys_Free(priv);
    Esys_Free(pub);
    TPM2B_DIGEST digest{};
    digest.size = 32;
    std::memset(digest.buffer, 0x5a, 32);
    TPMT_SIG_SCHEME scheme{};
    scheme.scheme = TPM2_ALG_ECDSA;
    scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    TPMT_TK_HASHCHECK ticket{};
    ticket.tag = TPM2_ST_HASHCHECK;
    ticket.hierarchy = TPM2_RH_NULL;
    const double raw = rate([&] {
        TPMT_SIGNATURE* sig = nullptr;
        REQUIRE(Esys_Sign(ctx, key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &digest, &scheme, &ticket, &sig) ==
                0);
        Esys_Free(sig);
    });
    Esys_FlushContext(ctx, key);
    Esys_Finalize(&ctx);
    Tss2_TctiLdr_Finalize(&tcti);

    auto opened = tpm::open_backend({tpm.tcti(), tpm.key_dir(), ""});
    REQUIRE(opened.ok());
    auto& backend = *opened.value();
    REQUIRE(backend.generate("bench", KeyType::ec_p256).ok());
    const std::vector<uint8_t> d(32, 0x5a);
    const double via_backend =
        rate([&] { REQUIRE(backend.sign("bench", ipc::Scheme::ecdsa_secp256r1_sha256, d).ok()); });
    REQUIRE(backend.generate("bench2", KeyType::ec_p256).ok());
    bool flip = false;
    const double alternating = rate([&] {
        flip = !flip;
        REQUIRE(backend.sign(flip ? "bench" : "bench2", ipc::Scheme::ecdsa_secp256r1_sha256, d).ok());
    });
    std::printf(
        "ECDSA P-256 on swtpm: raw ESAPI %.0f signs/s, backend %.0f signs/s (%.0f%%), "
        "backend alternating two keys (reload each time) %.0f signs/s\n",
        raw, via_backend, 100 * via_backend / raw, alternating);
}
