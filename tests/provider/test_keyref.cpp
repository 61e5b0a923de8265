// Key-reference files: round trips, and rejection of everything that is not exactly one
// canonical DER KeywardKeyReference (truncated, oversized, garbage, trailing bytes, BER).
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "ipc/keyref.hpp"

namespace {

std::vector<uint8_t> make_spki(const char* algorithm, const char* param) {
    EVP_PKEY* key = nullptr;
    if (std::string(algorithm) == "EC") key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", param);
    else key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
    REQUIRE(key != nullptr);
    unsigned char* der = nullptr;
    int n = i2d_PUBKEY(key, &der);
    REQUIRE(n > 0);
    std::vector<uint8_t> out(der, der + n);
    OPENSSL_free(der);
    EVP_PKEY_free(key);
    return out;
}

const std::vector<uint8_t>& p256_spki() {
    static const std::vector<uint8_t> spki = make_spki("EC", "P-256");
    return spki;
}

keyward::KeyReference sample() { return {"web-client", p256_spki()}; }

bool rejected(const std::vector<uint8_t>& der) {
    auto r = keyward::decode_key_reference_der(der);
    if (r.ok()) return false;
    CHECK(r.status().code == keyward::ErrorCode::invalid_argument);
    CHECK(r.status().message.find("invalid keyward key reference") != std::string::npos);
    return true;
}

}  // namespace

TEST_CASE("key reference DER round trip", "[keyref]") {
    for (const auto& spki : {p256_spki(), make_spki("EC", "P-384"), make_spki("RSA", nullptr)}) {
        keyward::KeyReference ref{"client-key", spki};
        auto der = keyward::encode_key_reference_der(ref);
        auto back = keyward::decode_key_reference_der(der);
        REQUIRE(back.ok());
        CHECK(back->name == "client-key");
        CHECK(back->spki == spki);
    }
}

TEST_CASE("key reference DER layout is SEQUENCE { INTEGER 1, UTF8String, SPKI }", "[keyref]") {
    auto der = keyward::encode_key_reference_der(sample());
    REQUIRE(der.size() > 10);
    CHECK(der[0] == 0x30);
    size_t off = der[1] & 0x80 ? 2 + (der[1] & 0x7f) : 2;
    CHECK(der[off] == 0x02);
    CHECK(der[off + 1] == 0x01);
    CHECK(der[off + 2] == 0x01);
    CHECK(der[off + 3] == 0x0c);  // UTF8String
    CHECK(der[off + 4] == std::string("web-client").size());
}

TEST_CASE("key reference PEM round trip and label", "[keyref]") {
    std::string pem = keyward::encode_key_reference_pem(sample());
    CHECK(pem.rfind("-----BEGIN KEYWARD KEY-----\n", 0) == 0);
    CHECK(pem.find("-----END KEYWARD KEY-----") != std::string::npos);
    auto back = keyward::decode_key_reference_pem(pem);
    REQUIRE(back.ok());
    CHECK(back->name == "web-client");
    CHECK(back->spki == p256_spki());
}

TEST_CASE("key reference PEM may sit next to other PEM blocks", "[keyref]") {
    std::string other = "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n";
    auto back = keyward::decode_key_reference_pem(other + keyward::encode_key_reference_pem(sample()));
    REQUIRE(back.ok());
    CHECK(back->name == "web-client");
}

TEST_CASE("key reference PEM without our block is rejected", "[keyref]") {
    auto r = keyward::decode_key_reference_pem("-----BEGIN PUBLIC KEY-----\nMAMCAQE=\n-----END PUBLIC KEY-----\n");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message.find("KEYWARD KEY") != std::string::npos);
    CHECK_FALSE(keyward::decode_key_reference_pem("").ok());
    CHECK_FALSE(
        keyward::decode_key_reference_pem("-----BEGIN KEYWARD KEY-----\n!!!!\n-----END KEYWARD KEY-----\n").ok());
}

TEST_CASE("truncated key references are rejected at every length", "[keyref]") {
    auto der = keyward::encode_key_reference_der(sample());
    for (size_t n = 0; n < der.size(); ++n) {
        INFO("length " << n);
        CHECK(rejected({der.begin(), der.begin() + static_cast<long>(n)}));
    }
}

TEST_CASE("trailing bytes are rejected", "[keyref]") {
    auto der = keyward::encode_key_reference_der(sample());
    der.push_back(0x00);
    CHECK(rejected(der));
}

TEST_CASE("garbage is rejected", "[keyref]") {
    CHECK(rejected({0x00}));
    CHECK(rejected({0x30, 0x00}));
    CHECK(rejected({0x04, 0x03, 0x01, 0x02, 0x03}));
    std::vector<uint8_t> noise(300);
    for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<uint8_t>(i * 37 + 11);
    CHECK(rejected(noise));
    // Every single-byte corruption either fails or still yields a valid reference.
    auto der = keyward::encode_key_reference_der(sample());
    for (size_t i = 0; i < der.size(); ++i) {
        auto bad = der;
        bad[i] ^= 0xff;
        auto r = keyward::decode_key_reference_der(bad);
        if (r.ok()) CHECK(keyward::encode_key_reference_der(r.value()) == bad);
    }
}

TEST_CASE("oversized input is rejected before parsing", "[keyref]") {
    std::vector<uint8_t> big(20000, 0x30);
    auto r = keyward::decode_key_reference_der(big);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message.find("too large") != std::string::npos);
}

TEST_CASE("wrong version, empty or unprintable names and bad public keys are rejected", "[keyref]") {
    auto der = keyward::encode_key_reference_der(sample());
    size_t off = der[1] & 0x80 ? 2 + (der[1] & 0x7f) : 2;
    auto v2 = der;
    v2[off + 2] = 0x02;
    CHECK(rejected(v2));

    CHECK(rejected(keyward::encode_key_reference_der({"", p256_spki()})));
    CHECK(rejected(keyward::encode_key_reference_der({"bad\nname", p256_spki()})));
    CHECK(rejected(keyward::encode_key_reference_der({std::string("\xff\xfe", 2), p256_spki()})));
    CHECK(rejected(keyward::encode_key_reference_der({std::string(256, 'a'), p256_spki()})));
    CHECK(keyward::decode_key_reference_der(keyward::encode_key_reference_der({std::string(255, 'a'), p256_spki()}))
              .ok());
    CHECK(keyward::decode_key_reference_der(keyward::encode_key_reference_der({"clé-ü", p256_spki()})).ok());

    auto spki = p256_spki();
    spki[spki.size() - 1] ^= 0x01;  // a point not on the curve
    CHECK(rejected(keyward::encode_key_reference_der({"k", spki})));
    CHECK(rejected(keyward::encode_key_reference_der({"k", {0x30, 0x00}})));
}

TEST_CASE("non-canonical DER is rejected", "[keyref]") {
    // A short outer length (EC key) written in long form: 30 81 LL instead of 30 LL.
    auto der = keyward::encode_key_reference_der(sample());
    REQUIRE((der[1] & 0x80) == 0);
    std::vector<uint8_t> long_form{0x30, 0x81, der[1]};
    long_form.insert(long_form.end(), der.begin() + 2, der.end());
    CHECK(rejected(long_form));

    // A long outer length (RSA key) with a superfluous leading zero byte.
    auto rsa = keyward::encode_key_reference_der({"k", make_spki("RSA", nullptr)});
    REQUIRE((rsa[1] & 0x80) != 0);
    size_t nlen = rsa[1] & 0x7f;
    std::vector<uint8_t> padded{0x30, static_cast<uint8_t>(0x80 | (nlen + 1)), 0x00};
    padded.insert(padded.end(), rsa.begin() + 2, rsa.end());
    CHECK(rejected(padded));

    // Indefinite length (BER).
    std::vector<uint8_t> indefinite{0x30, 0x80};
    indefinite.insert(indefinite.end(), der.begin() + 2, der.end());
    indefinite.push_back(0x00);
    indefinite.push_back(0x00);
    CHECK(rejected(indefinite));
}
