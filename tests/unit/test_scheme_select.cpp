// Mapping of (key kind, digest, padding, salt, MGF1) onto the agent's signature schemes.
#include <catch2/catch.hpp>

#include "core/scheme_select.hpp"

using keyward::Scheme;
using namespace keyward;

namespace {

SignSettings rsa(DigestId d, Padding p, int salt = kSaltDigest, DigestId mgf1 = DigestId::none) {
    SignSettings s;
    s.digest = d;
    s.padding = p;
    s.saltlen = salt;
    s.mgf1 = mgf1;
    return s;
}

}  // namespace

TEST_CASE("ECDSA follows the curve, whatever the digest", "[scheme]") {
    SignSettings s;
    for (DigestId d : {DigestId::none, DigestId::sha256, DigestId::sha384, DigestId::sha512}) {
        s.digest = d;
        CHECK(select_scheme(KeyKind::ec, s, 256).value() == Scheme::ecdsa_secp256r1_sha256);
        CHECK(select_scheme(KeyKind::ec, s, 384).value() == Scheme::ecdsa_secp384r1_sha384);
    }
    CHECK_FALSE(select_scheme(KeyKind::ec, s, 521).ok());
}

TEST_CASE("ECDSA input is the digest fitted to the order size", "[scheme]") {
    std::vector<uint8_t> d32(32), d48(48), d64(64);
    for (size_t i = 0; i < 64; ++i) {
        if (i < 32) d32[i] = static_cast<uint8_t>(i + 1);
        if (i < 48) d48[i] = static_cast<uint8_t>(i + 1);
        d64[i] = static_cast<uint8_t>(i + 1);
    }
    CHECK(fit_ecdsa_input(d32, 32) == d32);
    CHECK(fit_ecdsa_input(d48, 32) == std::vector<uint8_t>(d48.begin(), d48.begin() + 32));
    CHECK(fit_ecdsa_input(d64, 48) == std::vector<uint8_t>(d64.begin(), d64.begin() + 48));
    auto padded = fit_ecdsa_input(d32, 48);
    REQUIRE(padded.size() == 48);
    CHECK(std::vector<uint8_t>(padded.begin(), padded.begin() + 16) == std::vector<uint8_t>(16, 0));
    CHECK(std::vector<uint8_t>(padded.begin() + 16, padded.end()) == d32);
}

TEST_CASE("RSA PKCS#1 v1.5 schemes", "[scheme]") {
    CHECK(select_scheme(KeyKind::rsa, rsa(DigestId::sha256, Padding::pkcs1)).value() == Scheme::rsa_pkcs1_sha256);
    CHECK(select_scheme(KeyKind::rsa, rsa(DigestId::sha384, Padding::pkcs1)).value() == Scheme::rsa_pkcs1_sha384);
    CHECK(select_scheme(KeyKind::rsa, rsa(DigestId::sha512, Padding::pkcs1)).value() == Scheme::rsa_pkcs1_sha512);
    CHECK_FALSE(select_scheme(KeyKind::rsa, rsa(DigestId::other, Padding::pkcs1)).ok());
    CHECK_FALSE(select_scheme(KeyKind::rsa, rsa(DigestId::none, Padding::pkcs1)).ok());
}

TEST_CASE("RSA PSS resolves every salt keyword to the hash length", "[scheme]") {
    for (int salt : {kSaltDigest, kSaltAuto, kSaltMax, 32}) {
        INFO("salt " << salt);
        CHECK(select_scheme(KeyKind::rsa, rsa(DigestId::sha256, Padding::pss, salt)).value() ==
              Scheme::rsa_pss_rsae_sha256);
    }
    CHECK(select_scheme(KeyKind::rsa, rsa(DigestId::sha384, Padding::pss, 48)).value() == Scheme::rsa_pss_rsae_sha384);
    CHECK(select_scheme(KeyKind::rsa, rsa(DigestId::sha512, Padding::pss)).value() == Scheme::rsa_pss_rsae_sha512);
}

TEST_CASE("RSA PSS refuses what the agent cannot do", "[scheme]") {
    auto odd_salt = select_scheme(KeyKind::rsa, rsa(DigestId::sha256, Padding::pss, 20));
    REQUIRE_FALSE(odd_salt.ok());
    CHECK(odd_salt.status().message.find("salt length 20") != std::string::npos);
    CHECK_FALSE(select_scheme(KeyKind::rsa, rsa(DigestId::sha256, Padding::pss, 0)).ok());
    CHECK_FALSE(select_scheme(KeyKind::rsa, rsa(DigestId::sha256, Padding::pss, kSaltDigest, DigestId::sha384)).ok());
    CHECK(select_scheme(KeyKind::rsa, rsa(DigestId::sha256, Padding::pss, kSaltDigest, DigestId::sha256)).ok());
}

TEST_CASE("RSA-PSS keys sign with PSS only", "[scheme]") {
    CHECK(select_scheme(KeyKind::rsa_pss, rsa(DigestId::sha256, Padding::pss)).value() == Scheme::rsa_pss_rsae_sha256);
    CHECK_FALSE(select_scheme(KeyKind::rsa_pss, rsa(DigestId::sha256, Padding::pkcs1)).ok());
}

TEST_CASE("padding and salt length parsing", "[scheme]") {
    CHECK(parse_padding("pkcs1").value() == Padding::pkcs1);
    CHECK(parse_padding("pss").value() == Padding::pss);
    CHECK_FALSE(parse_padding("none").ok());
    CHECK_FALSE(parse_padding("x931").ok());
    CHECK(padding_from_int(1).value() == Padding::pkcs1);
    CHECK(padding_from_int(6).value() == Padding::pss);
    CHECK_FALSE(padding_from_int(3).ok());  // RSA_NO_PADDING: never a raw RSA operation
    CHECK(padding_to_int(Padding::pss) == 6);

    CHECK(parse_saltlen("digest").value() == kSaltDigest);
    CHECK(parse_saltlen("auto").value() == kSaltAuto);
    CHECK(parse_saltlen("max").value() == kSaltMax);
    CHECK(parse_saltlen("32").value() == 32);
    CHECK(parse_saltlen("-1").value() == -1);
    CHECK_FALSE(parse_saltlen("").ok());
    CHECK_FALSE(parse_saltlen("32x").ok());
    CHECK_FALSE(parse_saltlen("-4").ok());
    CHECK_FALSE(parse_saltlen("99999999999999").ok());
}
