// base64url, JWK/thumbprint and JWS encoding, checked against RFC vectors and against
// OpenSSL verifying what we produced.
#include <catch2/catch.hpp>

#include <memory>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "agent/lifecycle/acme/base64url.hpp"
#include "agent/lifecycle/acme/jws.hpp"
#include "core/ecdsa_sig.hpp"
#include "core/ossl.hpp"

using namespace keyward::acme;
using keyward::ecdsa_der_to_raw;

namespace {

using PkeyPtr = keyward::ossl::PKey;

std::vector<uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }

std::vector<uint8_t> spki_of(EVP_PKEY* key) {
    int len = i2d_PUBKEY(key, nullptr);
    std::vector<uint8_t> out(static_cast<size_t>(len));
    unsigned char* p = out.data();
    i2d_PUBKEY(key, &p);
    return out;
}

// What a device does: sign a digest, return DER (ECDSA) or PKCS#1 v1.5 (RSA).
std::vector<uint8_t> device_sign(EVP_PKEY* key, const EVP_MD* md, std::string_view input) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_Digest(input.data(), input.size(), digest, &dlen, md, nullptr);
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key, nullptr);
    EVP_PKEY_sign_init(ctx);
    EVP_PKEY_CTX_set_signature_md(ctx, md);
    if (EVP_PKEY_is_a(key, "RSA")) EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING);
    size_t siglen = 0;
    EVP_PKEY_sign(ctx, nullptr, &siglen, digest, dlen);
    std::vector<uint8_t> sig(siglen);
    EVP_PKEY_sign(ctx, sig.data(), &siglen, digest, dlen);
    sig.resize(siglen);
    EVP_PKEY_CTX_free(ctx);
    return sig;
}

std::string text_of(const std::optional<std::vector<uint8_t>>& v) {
    REQUIRE(v.has_value());
    return std::string(v->begin(), v->end());
}

}  // namespace

TEST_CASE("base64url matches RFC 4648 vectors, without padding", "[acme][jose]") {
    const std::pair<const char*, const char*> vectors[] = {
        {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},         {"foo", "Zm9v"},
        {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
    for (auto [plain, encoded] : vectors) {
        CHECK(base64url_encode(std::string_view(plain)) == encoded);
        CHECK(text_of(base64url_decode(encoded)) == plain);
    }
    std::vector<uint8_t> special = {0xfb, 0xff, 0xbf};
    CHECK(base64url_encode(special) == "-_-_");
    CHECK(base64url_decode("-_-_") == std::optional<std::vector<uint8_t>>(special));
}

TEST_CASE("base64url_decode refuses padding, other alphabets and impossible lengths", "[acme][jose]") {
    for (const char* bad : {"Zg==", "Zm9v+", "Zm9v/", "Zm 9v", "Z", "Zm9vY", "Zh", "Zm9\n"}) {
        INFO(bad);
        CHECK_FALSE(base64url_decode(bad).has_value());
    }
}

TEST_CASE("JWK thumbprint matches RFC 7638 §3.1", "[acme][jose]") {
    nlohmann::json jwk = {
        {"kty", "RSA"},
        {"n",
         "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3"
         "oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdA"
         "ZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-"
         "kEgU8awapJzKnqDKgw"},
        {"e", "AQAB"},
        {"alg", "RS256"},
        {"kid", "2011-04-29"}};
    CHECK(jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    CHECK(jwk_thumbprint(nlohmann::json{{"kty", "EC"}, {"crv", "P-256"}}).empty());
}

TEST_CASE("ECDSA DER signatures become fixed-width r||s", "[acme][jose]") {
    // r = 1, s = 0x80 (DER needs a leading zero for s)
    const std::vector<uint8_t> der = {0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x80};
    auto raw = ecdsa_der_to_raw(der, 32);
    REQUIRE(raw.ok());
    std::vector<uint8_t> expected(64, 0);
    expected[31] = 0x01;
    expected[63] = 0x80;
    CHECK(raw.value() == expected);
    std::vector<uint8_t> trailing = der;
    trailing.push_back(0);
    CHECK_FALSE(ecdsa_der_to_raw(trailing, 32).ok());
    CHECK_FALSE(ecdsa_der_to_raw(std::vector<uint8_t>(der.begin(), der.end() - 1), 32).ok());
    CHECK_FALSE(ecdsa_der_to_raw(std::vector<uint8_t>{0x04, 0x01, 0x02}, 32).ok());
    // r of 33 significant bytes does not fit P-256
    std::vector<uint8_t> big = {0x30, 0x26, 0x02, 0x21, 0x01};
    big.insert(big.end(), 32, 0x11);
    big.insert(big.end(), {0x02, 0x01, 0x01});
    CHECK_FALSE(ecdsa_der_to_raw(big, 32).ok());
}

TEST_CASE("EC P-256 account key: JWK coordinates, ES256, a JWS OpenSSL verifies", "[acme][jose]") {
    PkeyPtr key(EVP_EC_gen("P-256"));
    REQUIRE(key);
    auto form = account_key_form(spki_of(key.get()));
    REQUIRE(form.ok());
    CHECK(form->alg == "ES256");
    CHECK(form->scheme == keyward::ipc::Scheme::ecdsa_secp256r1_sha256);
    CHECK(form->jwk["kty"] == "EC");
    CHECK(form->jwk["crv"] == "P-256");
    CHECK(form->jwk.size() == 4);
    CHECK(form->thumbprint == jwk_thumbprint(form->jwk));

    // x and y equal the uncompressed point OpenSSL reports
    unsigned char point[65];
    size_t plen = 0;
    REQUIRE(EVP_PKEY_get_octet_string_param(key.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &plen) == 1);
    REQUIRE(plen == 65);
    CHECK(base64url_decode(form->jwk["x"].get<std::string>()) ==
          std::optional<std::vector<uint8_t>>(std::vector<uint8_t>(point + 1, point + 33)));
    CHECK(base64url_decode(form->jwk["y"].get<std::string>()) ==
          std::optional<std::vector<uint8_t>>(std::vector<uint8_t>(point + 33, point + 65)));

    nlohmann::json header = {
        {"alg", form->alg}, {"nonce", "n0nce"}, {"url", "https://x/new-order"}, {"kid", "https://x/acct/1"}};
    std::string payload = R"({"identifiers":[{"type":"dns","value":"a.example"}]})";
    std::string seen_input;
    auto jws = make_jws(header, payload, [&](std::string_view input) -> keyward::Result<std::vector<uint8_t>> {
        seen_input = std::string(input);
        return ecdsa_der_to_raw(device_sign(key.get(), EVP_sha256(), input), form->ec_coordinate);
    });
    REQUIRE(jws.ok());
    auto body = nlohmann::json::parse(jws.value());
    std::string prot = body["protected"], pay = body["payload"], sig = body["signature"];
    CHECK(seen_input == prot + "." + pay);
    CHECK(nlohmann::json::parse(text_of(base64url_decode(prot))) == header);
    CHECK(text_of(base64url_decode(pay)) == payload);
    auto raw = base64url_decode(sig);
    REQUIRE(raw.has_value());
    REQUIRE(raw->size() == 64);

    // Back to DER and verify with OpenSSL over the signing input.
    ECDSA_SIG* es = ECDSA_SIG_new();
    ECDSA_SIG_set0(es, BN_bin2bn(raw->data(), 32, nullptr), BN_bin2bn(raw->data() + 32, 32, nullptr));
    unsigned char* der = nullptr;
    int der_len = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    REQUIRE(EVP_DigestVerifyInit(md, nullptr, EVP_sha256(), nullptr, key.get()) == 1);
    CHECK(EVP_DigestVerify(md, der, static_cast<size_t>(der_len),
                           reinterpret_cast<const unsigned char*>(seen_input.data()), seen_input.size()) == 1);
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
}

TEST_CASE("POST-as-GET has an empty payload", "[acme][jose]") {
    auto jws = make_jws({{"alg", "ES256"}}, "", [](std::string_view input) -> keyward::Result<std::vector<uint8_t>> {
        CHECK(input.back() == '.');
        return std::vector<uint8_t>(64, 1);
    });
    REQUIRE(jws.ok());
    CHECK(nlohmann::json::parse(jws.value())["payload"] == "");
    auto failed = make_jws({{"alg", "ES256"}}, "", [](std::string_view) -> keyward::Result<std::vector<uint8_t>> {
        return keyward::Status{keyward::ErrorCode::device_unavailable, "token removed"};
    });
    CHECK(failed.status().code == keyward::ErrorCode::device_unavailable);
}

TEST_CASE("P-384 and RSA account keys; other keys are refused", "[acme][jose]") {
    PkeyPtr p384(EVP_EC_gen("P-384"));
    auto f384 = account_key_form(spki_of(p384.get()));
    REQUIRE(f384.ok());
    CHECK(f384->alg == "ES384");
    CHECK(f384->ec_coordinate == 48);
    CHECK(base64url_decode(f384->jwk["x"].get<std::string>())->size() == 48);

    PkeyPtr rsa(EVP_RSA_gen(2048));
    auto frsa = account_key_form(spki_of(rsa.get()));
    REQUIRE(frsa.ok());
    CHECK(frsa->alg == "RS256");
    CHECK(frsa->jwk["e"] == "AQAB");
    BIGNUM* n = nullptr;
    EVP_PKEY_get_bn_param(rsa.get(), OSSL_PKEY_PARAM_RSA_N, &n);
    std::vector<uint8_t> nbytes(static_cast<size_t>(BN_num_bytes(n)));
    BN_bn2bin(n, nbytes.data());
    BN_free(n);
    CHECK(base64url_decode(frsa->jwk["n"].get<std::string>()) == std::optional<std::vector<uint8_t>>(nbytes));

    PkeyPtr ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    CHECK_FALSE(account_key_form(spki_of(ed.get())).ok());
    PkeyPtr p521(EVP_EC_gen("P-521"));
    CHECK_FALSE(account_key_form(spki_of(p521.get())).ok());
    CHECK_FALSE(account_key_form(bytes("not a key")).ok());
    auto spki = spki_of(p384.get());
    spki.push_back(0);
    CHECK_FALSE(account_key_form(spki).ok());
}
