// The one table of key types and signature schemes (core/key_types.hpp, core/schemes.hpp):
// what every backend reports as a key's schemes and what the provider and engine choose.
#include <catch2/catch.hpp>

#include <algorithm>

#include "core/key_types.hpp"
#include "core/schemes.hpp"

using namespace keyward;

TEST_CASE("key types: names round-trip and the list is complete", "[core]") {
    CHECK(all_key_types().size() == 5);
    for (KeyType t : all_key_types()) {
        auto back = key_type_from_name(key_type_name(t));
        REQUIRE(back);
        CHECK(*back == t);
    }
    CHECK_FALSE(key_type_from_name("ec-p521"));
    CHECK_FALSE(key_type_from_name(""));
    CHECK(key_type_names() == "ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096");
    CHECK(ec_key_type_for_bits(384) == KeyType::ec_p384);
    CHECK_FALSE(ec_key_type_for_bits(521));
    CHECK(rsa_key_type_for_bytes(256) == KeyType::rsa_2048);
    CHECK(rsa_key_type_for_bytes(512) == KeyType::rsa_4096);
    CHECK_FALSE(rsa_key_type_for_bytes(128));
}

TEST_CASE("schemes: an EC key signs only with its curve's ECDSA scheme", "[core]") {
    CHECK(schemes_for(KeyType::ec_p256, true) == std::vector<Scheme>{Scheme::ecdsa_secp256r1_sha256});
    CHECK(schemes_for(KeyType::ec_p384, false) == std::vector<Scheme>{Scheme::ecdsa_secp384r1_sha384});
    CHECK(ecdsa_scheme_for(256) == Scheme::ecdsa_secp256r1_sha256);
    CHECK_FALSE(ecdsa_scheme_for(521));
}

TEST_CASE("schemes: RSA keys get PSS only where the device makes it with salt = hash length", "[core]") {
    const auto with = schemes_for(KeyType::rsa_2048, true);
    const auto without = schemes_for(KeyType::rsa_2048, false);
    CHECK(with.size() == 6);
    CHECK(without == std::vector<Scheme>{Scheme::rsa_pkcs1_sha256, Scheme::rsa_pkcs1_sha384, Scheme::rsa_pkcs1_sha512});
    CHECK(std::find(with.begin(), with.end(), Scheme::ecdsa_secp256r1_sha256) == with.end());
    // Preference order: PSS before PKCS#1 (TLS 1.3 needs PSS).
    CHECK(with.front() == Scheme::rsa_pss_rsae_sha256);
    CHECK(rsa_scheme_for(SchemeFamily::rsa_pss, 48) == Scheme::rsa_pss_rsae_sha384);
    CHECK(rsa_scheme_for(SchemeFamily::rsa_pkcs1, 64) == Scheme::rsa_pkcs1_sha512);
    CHECK_FALSE(rsa_scheme_for(SchemeFamily::rsa_pkcs1, 20));
    CHECK_FALSE(rsa_scheme_for(SchemeFamily::ecdsa, 32));
}

TEST_CASE("schemes: names and code points", "[core]") {
    for (const auto& s : all_schemes()) {
        CHECK(scheme_by_name(s.name) == &s);
        CHECK(scheme_from_u16(static_cast<uint16_t>(s.scheme)) == &s);
    }
    CHECK(scheme_from_u16(0x0807) == nullptr);  // ed25519: not ours
    CHECK(scheme_by_name("rsa_pss_pss_sha256") == nullptr);
}
