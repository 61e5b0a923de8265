// Conformance of the PKCS#11 backend against a real SoftHSM2 token: every key type, every
// scheme verified by OpenSSL against the SPKI, attributes as read back, the error cases,
// and many threads signing at once.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>

#include "tests/pkcs11/softhsm_token.hpp"
#include "tests/pkcs11/verify.hpp"

using namespace keyward;
using keyward::test::random_bytes;
using keyward::test::shared_token;
using keyward::test::verify_signature;

namespace {

std::unique_ptr<KeyBackend> open_shared(size_t sessions = 0) {
    auto backend = pkcs11::open_backend(shared_token().config(sessions));
    INFO(backend.status().message);
    REQUIRE(backend.ok());
    return std::move(backend).value();
}

std::string attribute(const BackendKey& key, const std::string& name) {
    for (const auto& a : key.attributes)
        if (a.name == name) return a.value;
    return "<missing>";
}

// A key of `type` on the shared token, made once per process.
const BackendKey& key_of(KeyBackend& backend, KeyType type) {
    static std::map<KeyType, BackendKey> made;
    if (auto it = made.find(type); it != made.end()) return it->second;
    const std::string label = "conf-" + std::string(key_type_name(type));
    auto key = backend.generate(label, type);
    INFO(key.status().message);
    REQUIRE(key.ok());
    return made.emplace(type, std::move(key).value()).first->second;
}

const KeyType kAllTypes[] = {KeyType::ec_p256, KeyType::ec_p384, KeyType::rsa_2048, KeyType::rsa_3072,
                             KeyType::rsa_4096};

}  // namespace

TEST_CASE("backend: describes the token", "[backend]") {
    auto backend = open_shared();
    CHECK(backend->kind() == "pkcs11");
    CHECK(backend->health() == DeviceHealth::present);
    CHECK_THAT(backend->description(), Catch::Contains("keyward-test") && Catch::Contains("SoftHSM"));
    CHECK(backend->max_concurrency() >= 2);
    auto three = pkcs11::open_backend(shared_token().config(3));
    REQUIRE(three.ok());
    CHECK(three.value()->max_concurrency() == 3);
}

TEST_CASE("backend: unknown token and bad URI are clear errors", "[backend]") {
    shared_token();
    auto config = shared_token().config();
    config.token_uri = "pkcs11:token=no-such-token";
    auto missing = pkcs11::open_backend(config);
    REQUIRE(!missing.ok());
    CHECK(missing.status().code == ErrorCode::no_such_token);
    CHECK_THAT(missing.status().message, Catch::Contains("no-such-token"));

    config.token_uri = "pkcs11:token=x;color=blue";
    auto bad = pkcs11::open_backend(config);
    REQUIRE(!bad.ok());
    CHECK(bad.status().code == ErrorCode::invalid_argument);
    CHECK_THAT(bad.status().message, Catch::Contains("color"));

    config = shared_token().config();
    config.module_path = "/nonexistent/libnothing.so";
    auto nomodule = pkcs11::open_backend(config);
    REQUIRE(!nomodule.ok());
    CHECK_THAT(nomodule.status().message, Catch::Contains("/nonexistent/libnothing.so"));
}

TEST_CASE("backend: every key type is generated non-exportable, and every scheme verifies", "[backend]") {
    auto backend = open_shared();
    for (KeyType type : kAllTypes) {
        const BackendKey& key = key_of(*backend, type);
        INFO("key type " << key_type_name(type));
        CHECK(key.type == type);
        CHECK(test::spki_bits(key.spki) == static_cast<int>(key_type_bits(type)));

        // Read back from the device, not as intended.
        CHECK(attribute(key, "CKA_TOKEN") == "true");
        CHECK(attribute(key, "CKA_PRIVATE") == "true");
        CHECK(attribute(key, "CKA_SENSITIVE") == "true");
        CHECK(attribute(key, "CKA_EXTRACTABLE") == "false");
        CHECK(attribute(key, "CKA_ALWAYS_SENSITIVE") == "true");
        CHECK(attribute(key, "CKA_NEVER_EXTRACTABLE") == "true");
        CHECK(attribute(key, "CKA_SIGN") == "true");
        CHECK(attribute(key, "CKA_DECRYPT") == "false");
        CHECK(attribute(key, "CKA_ID").size() == 32);  // 16 random bytes as hex

        std::vector<ipc::Scheme> expected;
        switch (type) {
            case KeyType::ec_p256: expected = {ipc::Scheme::ecdsa_secp256r1_sha256}; break;
            case KeyType::ec_p384: expected = {ipc::Scheme::ecdsa_secp384r1_sha384}; break;
            default:  // SoftHSM offers CKM_RSA_PKCS_PSS
                expected = {ipc::Scheme::rsa_pkcs1_sha256,    ipc::Scheme::rsa_pkcs1_sha384,
                            ipc::Scheme::rsa_pkcs1_sha512,    ipc::Scheme::rsa_pss_rsae_sha256,
                            ipc::Scheme::rsa_pss_rsae_sha384, ipc::Scheme::rsa_pss_rsae_sha512};
        }
        auto got = key.schemes;
        std::sort(got.begin(), got.end());
        std::sort(expected.begin(), expected.end());
        CHECK(got == expected);

        for (const auto& info : ipc::all_schemes()) {
            INFO("scheme " << info.name);
            const auto digest = random_bytes(info.digest_size);
            auto sig = backend->sign(key.label, info.scheme, digest);
            const bool offered = std::find(key.schemes.begin(), key.schemes.end(), info.scheme) != key.schemes.end();
            if (!offered) {
                REQUIRE(!sig.ok());
                CHECK(sig.status().code == ErrorCode::unsupported_scheme);
                continue;
            }
            INFO(sig.status().message);
            REQUIRE(sig.ok());
            CHECK(verify_signature(key.spki, info.scheme, digest, sig.value()));
            auto other = digest;
            other[0] ^= 1;
            CHECK_FALSE(verify_signature(key.spki, info.scheme, other, sig.value()));  // the check is not vacuous
        }
    }
}

TEST_CASE("backend: list and describe agree with generate", "[backend]") {
    auto backend = open_shared();
    for (KeyType type : kAllTypes) key_of(*backend, type);
    auto listed = backend->list_keys();
    REQUIRE(listed.ok());
    for (KeyType type : kAllTypes) {
        const BackendKey& made = key_of(*backend, type);
        auto it = std::find_if(listed.value().begin(), listed.value().end(),
                               [&](const BackendKey& k) { return k.label == made.label; });
        REQUIRE(it != listed.value().end());
        CHECK(it->spki == made.spki);
        CHECK(it->type == made.type);
        CHECK(it->attributes == made.attributes);
        auto described = backend->describe(made.label);
        REQUIRE(described.ok());
        CHECK(described.value().spki == made.spki);
        CHECK(described.value().schemes == made.schemes);
    }
}

TEST_CASE("backend: keys survive reopening the backend", "[backend]") {
    std::vector<uint8_t> spki;
    {
        auto backend = open_shared();
        spki = key_of(*backend, KeyType::ec_p256).spki;
    }
    auto backend = open_shared();
    const auto digest = random_bytes(32);
    auto sig = backend->sign("conf-ec-p256", ipc::Scheme::ecdsa_secp256r1_sha256, digest);
    REQUIRE(sig.ok());
    CHECK(verify_signature(spki, ipc::Scheme::ecdsa_secp256r1_sha256, digest, sig.value()));
}

TEST_CASE("backend: error cases", "[backend]") {
    auto backend = open_shared();
    const BackendKey& ec = key_of(*backend, KeyType::ec_p256);
    const BackendKey& rsa = key_of(*backend, KeyType::rsa_2048);

    SECTION("wrong digest size") {
        auto sig = backend->sign(ec.label, ipc::Scheme::ecdsa_secp256r1_sha256, random_bytes(20));
        REQUIRE(!sig.ok());
        CHECK(sig.status().code == ErrorCode::invalid_argument);
        CHECK_THAT(sig.status().message, Catch::Contains("32"));
        sig = backend->sign(rsa.label, ipc::Scheme::rsa_pkcs1_sha384, random_bytes(32));
        REQUIRE(!sig.ok());
        CHECK(sig.status().code == ErrorCode::invalid_argument);
    }
    SECTION("scheme that does not fit the key") {
        auto sig = backend->sign(ec.label, ipc::Scheme::ecdsa_secp384r1_sha384, random_bytes(48));
        REQUIRE(!sig.ok());
        CHECK(sig.status().code == ErrorCode::unsupported_scheme);
        sig = backend->sign(rsa.label, ipc::Scheme::ecdsa_secp256r1_sha256, random_bytes(32));
        REQUIRE(!sig.ok());
        CHECK(sig.status().code == ErrorCode::unsupported_scheme);
        sig = backend->sign(rsa.label, static_cast<ipc::Scheme>(0x0201), random_bytes(20));  // rsa_pkcs1_sha1
        REQUIRE(!sig.ok());
        CHECK(sig.status().code == ErrorCode::unsupported_scheme);
    }
    SECTION("unknown key") {
        auto sig = backend->sign("no-such-key", ipc::Scheme::ecdsa_secp256r1_sha256, random_bytes(32));
        REQUIRE(!sig.ok());
        CHECK(sig.status().code == ErrorCode::no_such_key);
        CHECK_THAT(sig.status().message, Catch::Contains("no-such-key"));
        CHECK(backend->describe("no-such-key").status().code == ErrorCode::no_such_key);
        CHECK(backend->destroy("no-such-key").code == ErrorCode::no_such_key);
    }
    SECTION("duplicate label") {
        auto again = backend->generate(ec.label, KeyType::ec_p384);
        REQUIRE(!again.ok());
        CHECK(again.status().code == ErrorCode::key_exists);
        CHECK_THAT(again.status().message, Catch::Contains(ec.label));
        auto still = backend->describe(ec.label);
        REQUIRE(still.ok());
        CHECK(still.value().spki == ec.spki);  // the original is untouched
    }
}

TEST_CASE("backend: destroy removes both halves", "[backend]") {
    auto backend = open_shared();
    auto key = backend->generate("doomed", KeyType::ec_p256);
    REQUIRE(key.ok());
    REQUIRE(backend->sign("doomed", ipc::Scheme::ecdsa_secp256r1_sha256, random_bytes(32)).ok());  // cached now
    REQUIRE(backend->destroy("doomed").ok());
    auto sig = backend->sign("doomed", ipc::Scheme::ecdsa_secp256r1_sha256, random_bytes(32));
    REQUIRE(!sig.ok());
    CHECK(sig.status().code == ErrorCode::no_such_key);
    auto listed = backend->list_keys();
    REQUIRE(listed.ok());
    for (const auto& k : listed.value()) CHECK(k.label != "doomed");
    CHECK(backend->destroy("doomed").code == ErrorCode::no_such_key);
    // The label is free again, public half included.
    auto reborn = backend->generate("doomed", KeyType::rsa_2048);
    REQUIRE(reborn.ok());
    CHECK(reborn.value().spki != key.value().spki);
    REQUIRE(backend->destroy("doomed").ok());
}

TEST_CASE("backend: 8 threads sign at once and every signature verifies", "[backend][threads]") {
    auto backend = open_shared();
    const BackendKey& ec = key_of(*backend, KeyType::ec_p256);
    const BackendKey& rsa = key_of(*backend, KeyType::rsa_2048);
    constexpr int kThreads = 8, kPerThread = 150;
    std::atomic<int> good{0}, bad{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kPerThread; ++i) {
                const bool use_rsa = (t % 4 == 3) && i % 5 == 0;  // mostly ECDSA, some RSA-PSS mixed in
                const auto& key = use_rsa ? rsa : ec;
                const auto scheme = use_rsa ? ipc::Scheme::rsa_pss_rsae_sha256 : ipc::Scheme::ecdsa_secp256r1_sha256;
                const auto digest = random_bytes(32);
                auto sig = backend->sign(key.label, scheme, digest);
                if (sig.ok() && verify_signature(key.spki, scheme, digest, sig.value())) ++good;
                else ++bad;
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(bad.load() == 0);
    CHECK(good.load() == kThreads * kPerThread);
    CHECK(backend->health() == DeviceHealth::present);
}
