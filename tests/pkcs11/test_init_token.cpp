// initialize_token(): a fresh token made by the backend itself, usable at once in the same process.
#include <catch2/catch.hpp>

#include "tests/pkcs11/softhsm_token.hpp"
#include "tests/pkcs11/verify.hpp"

using namespace keyward;

TEST_CASE("initialize_token: a new token, then open_backend in the same process", "[init]") {
    test::SoftHsmToken store("");  // empty store: only SoftHSM's free slot
    Status s = pkcs11::initialize_token(test::kSoftHsmModule, "fresh", test::kSoPin, test::kUserPin);
    INFO(s.message);
    REQUIRE(s.ok());

    auto config = store.config(2);
    config.token_uri = "pkcs11:token=fresh";
    auto opened = pkcs11::open_backend(config);
    INFO(opened.status().message);
    REQUIRE(opened.ok());
    auto& backend = *opened.value();
    CHECK(backend.health() == DeviceHealth::present);
    auto key = backend.generate("first", KeyType::ec_p384);
    REQUIRE(key.ok());
    const auto digest = test::random_bytes(48);
    auto sig = backend.sign("first", ipc::Scheme::ecdsa_secp384r1_sha384, digest);
    REQUIRE(sig.ok());
    CHECK(test::verify_signature(key.value().spki, ipc::Scheme::ecdsa_secp384r1_sha384, digest, sig.value()));

    // A second token beside it while the first one is open (the module is not finalised then).
    s = pkcs11::initialize_token(test::kSoftHsmModule, "second", test::kSoPin, test::kUserPin);
    INFO(s.message);
    REQUIRE(s.ok());
    config.token_uri = "pkcs11:token=second";
    auto second = pkcs11::open_backend(config);
    INFO(second.status().message);
    REQUIRE(second.ok());
    CHECK(second.value()->health() == DeviceHealth::present);
    auto listed = second.value()->list_keys();
    REQUIRE(listed.ok());
    CHECK(listed.value().empty());

    // The same label twice is refused; the first token keeps working.
    s = pkcs11::initialize_token(test::kSoftHsmModule, "fresh", test::kSoPin, test::kUserPin);
    CHECK(s.code == ErrorCode::invalid_argument);
    CHECK_THAT(s.message, Catch::Contains("fresh"));
    CHECK(backend.sign("first", ipc::Scheme::ecdsa_secp384r1_sha384, digest).ok());
}

TEST_CASE("initialize_token: bad arguments", "[init]") {
    test::SoftHsmToken store("");
    CHECK(pkcs11::initialize_token(test::kSoftHsmModule, "", "so", "user").code == ErrorCode::invalid_argument);
    CHECK(pkcs11::initialize_token(test::kSoftHsmModule, std::string(33, 'x'), "so", "user").code ==
          ErrorCode::invalid_argument);
    CHECK(pkcs11::initialize_token(test::kSoftHsmModule, "x", "", "user").code == ErrorCode::invalid_argument);
    CHECK(!pkcs11::initialize_token("/nonexistent.so", "x", "so", "user").ok());
}
