// The pure parts of keyward-pkcs11.so: DigestInfo parsing, PSS parameters, the ECDSA input
// for a curve, and the objects built from a GET_KEY answer.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/ossl.hpp"
#include "p11module/mechanisms.hpp"
#include "p11module/objects.hpp"

using namespace keyward;
using namespace keyward::p11module;

namespace {

std::vector<uint8_t> digest_info_sha256(uint8_t fill) {
    std::vector<uint8_t> der = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
    der.insert(der.end(), 32, fill);
    return der;
}

// A fresh software key's SubjectPublicKeyInfo, e.g. ("EC", "group", "P-256").
std::vector<uint8_t> spki_of(const char* algorithm, const char* param, const char* value) {
    ossl::PKeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, algorithm, nullptr));
    REQUIRE(EVP_PKEY_keygen_init(ctx.get()) == 1);
    REQUIRE(EVP_PKEY_CTX_ctrl_str(ctx.get(), param, value) > 0);
    EVP_PKEY* raw = nullptr;
    REQUIRE(EVP_PKEY_generate(ctx.get(), &raw) == 1);
    ossl::PKey key(raw);
    const int n = i2d_PUBKEY(key.get(), nullptr);
    std::vector<uint8_t> der(static_cast<size_t>(n));
    unsigned char* p = der.data();
    i2d_PUBKEY(key.get(), &p);
    return der;
}

const ObjectAttribute& attr(const Object& o, CK_ATTRIBUTE_TYPE t) {
    const ObjectAttribute* a = o.find(t);
    REQUIRE(a != nullptr);
    return *a;
}

bool bool_attr(const Object& o, CK_ATTRIBUTE_TYPE t) { return attr(o, t).value.at(0) == CK_TRUE; }

}  // namespace

TEST_CASE("a SHA-256/384/512 DigestInfo gives its scheme and digest") {
    auto der = digest_info_sha256(0xab);
    auto parsed = parse_digest_info(der);
    REQUIRE(parsed);
    CHECK(parsed->scheme == Scheme::rsa_pkcs1_sha256);
    CHECK(parsed->digest.size() == 32);
    CHECK(parsed->digest[0] == 0xab);

    std::vector<uint8_t> sha512 = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                   0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40};
    sha512.insert(sha512.end(), 64, 1);
    REQUIRE(parse_digest_info(sha512));
    CHECK(parse_digest_info(sha512)->scheme == Scheme::rsa_pkcs1_sha512);
}

TEST_CASE("DigestInfo: truncated, oversized, garbage and unsupported hashes are refused") {
    auto der = digest_info_sha256(1);
    for (size_t n = 0; n < der.size(); ++n) CHECK_FALSE(parse_digest_info(std::span<const uint8_t>(der.data(), n)));
    auto longer = der;
    longer.push_back(0);
    CHECK_FALSE(parse_digest_info(longer));
    std::vector<uint8_t> garbage(51, 0x30);
    CHECK_FALSE(parse_digest_info(garbage));
    // SHA-1 (RFC 8017 prefix) is not something the agent signs.
    std::vector<uint8_t> sha1 = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                                 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};
    sha1.insert(sha1.end(), 20, 2);
    CHECK_FALSE(parse_digest_info(sha1));
    // The TLS 1.0 MD5+SHA-1 concatenation, 36 raw bytes.
    CHECK_FALSE(parse_digest_info(std::vector<uint8_t>(36, 3)));
    // Parameters absent instead of NULL: a different DER the agent would not reproduce.
    std::vector<uint8_t> no_null = {0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48,
                                    0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x04, 0x20};
    no_null.insert(no_null.end(), 32, 4);
    CHECK_FALSE(parse_digest_info(no_null));
    // A flipped byte inside the prefix.
    auto flipped = der;
    flipped[14] = 0x04;
    CHECK_FALSE(parse_digest_info(flipped));
}

TEST_CASE("PSS parameters: salt = hash length, MGF1 over the same hash, or nothing") {
    const MechanismInfo* pss = find_mechanism(CKM_RSA_PKCS_PSS);
    const MechanismInfo* pss256 = find_mechanism(CKM_SHA256_RSA_PKCS_PSS);
    REQUIRE(pss);
    REQUIRE(pss256);
    CK_RSA_PKCS_PSS_PARAMS p{CKM_SHA384, CKG_MGF1_SHA384, 48};
    CHECK(pss_scheme_from_params(*pss, &p, sizeof p) == Scheme::rsa_pss_rsae_sha384);
    CHECK_FALSE(pss_scheme_from_params(*pss256, &p, sizeof p));  // not the mechanism's hash
    p = {CKM_SHA256, CKG_MGF1_SHA256, 32};
    CHECK(pss_scheme_from_params(*pss256, &p, sizeof p) == Scheme::rsa_pss_rsae_sha256);
    p = {CKM_SHA256, CKG_MGF1_SHA256, 0};
    CHECK_FALSE(pss_scheme_from_params(*pss, &p, sizeof p));
    p = {CKM_SHA256, CKG_MGF1_SHA384, 32};
    CHECK_FALSE(pss_scheme_from_params(*pss, &p, sizeof p));
    p = {CKM_SHA_1, CKG_MGF1_SHA1, 20};
    CHECK_FALSE(pss_scheme_from_params(*pss, &p, sizeof p));
    p = {CKM_SHA256, CKG_MGF1_SHA256, 32};
    CHECK_FALSE(pss_scheme_from_params(*pss, nullptr, 0));
    CHECK_FALSE(pss_scheme_from_params(*pss, &p, sizeof p - 1));
    CHECK_FALSE(pss_scheme_from_params(*pss, &p, sizeof p + 1));
    CHECK_FALSE(pss_scheme_from_params(*find_mechanism(CKM_RSA_PKCS), &p, sizeof p));
}

TEST_CASE("ECDSA input: cut to the curve or left-padded, the same integer") {
    std::vector<uint8_t> h48(48);
    for (size_t i = 0; i < h48.size(); ++i) h48[i] = static_cast<uint8_t>(i + 1);
    auto cut = ecdsa_input_for_curve(h48, 32);
    REQUIRE(cut.size() == 32);
    CHECK(cut.front() == 1);
    CHECK(cut.back() == 32);
    std::vector<uint8_t> h20(20, 7);
    auto padded = ecdsa_input_for_curve(h20, 48);
    REQUIRE(padded.size() == 48);
    CHECK(padded[27] == 0);
    CHECK(padded[28] == 7);
    CHECK(padded[47] == 7);
}

TEST_CASE("every mechanism is found, nothing else") {
    for (const auto& m : all_mechanisms()) CHECK(find_mechanism(m.type) == &m);
    CHECK(find_mechanism(CKM_RSA_X_509) == nullptr);
    CHECK(find_mechanism(CKM_SHA1_RSA_PKCS) == nullptr);
    CHECK(find_mechanism(CKM_ECDSA_SHA1) == nullptr);
}

TEST_CASE("objects of an EC key: private, public, CKA_ID from the SPKI") {
    ipc::KeyInfo key;
    key.name = "web";
    key.type = "ec-p256";
    key.spki = spki_of("EC", "group", "P-256");
    key.schemes = {Scheme::ecdsa_secp256r1_sha256};
    key.attributes = {{"CKA_ALWAYS_SENSITIVE", "true"}, {"CKA_NEVER_EXTRACTABLE", "true"}};
    auto objects = objects_for_key(key);
    REQUIRE(objects.ok());
    REQUIRE(objects->size() == 2);
    const Object& priv = objects->at(0);
    const Object& pub = objects->at(1);
    CHECK(priv.object_class == CKO_PRIVATE_KEY);
    CHECK(pub.object_class == CKO_PUBLIC_KEY);
    CHECK(priv.is_ec);
    CHECK(priv.signature_size == 64);
    CHECK(bool_attr(priv, CKA_SIGN));
    CHECK(bool_attr(priv, CKA_SENSITIVE));
    CHECK_FALSE(bool_attr(priv, CKA_EXTRACTABLE));
    CHECK(bool_attr(priv, CKA_ALWAYS_SENSITIVE));
    CHECK(bool_attr(priv, CKA_NEVER_EXTRACTABLE));
    CHECK(attr(priv, CKA_ID).value == key_id_for_spki(key.spki));
    CHECK(attr(priv, CKA_ID).value == attr(pub, CKA_ID).value);
    CHECK(attr(priv, CKA_LABEL).value == std::vector<uint8_t>{'w', 'e', 'b'});
    // prime256v1 OID, and an uncompressed point wrapped in an OCTET STRING.
    CHECK(attr(pub, CKA_EC_PARAMS).value ==
          std::vector<uint8_t>{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07});
    const auto& point = attr(pub, CKA_EC_POINT).value;
    REQUIRE(point.size() == 67);
    CHECK(point[0] == 0x04);
    CHECK(point[1] == 65);
    CHECK(point[2] == 0x04);
    CHECK(priv.find(CKA_PRIVATE_EXPONENT) == nullptr);
}

TEST_CASE("objects of an RSA key: modulus, exponent, bits") {
    ipc::KeyInfo key;
    key.name = "rsa";
    key.spki = spki_of("RSA", "bits", "2048");
    key.schemes = {Scheme::rsa_pkcs1_sha256};
    auto objects = objects_for_key(key);
    REQUIRE(objects.ok());
    const Object& priv = objects->at(0);
    const Object& pub = objects->at(1);
    CHECK_FALSE(priv.is_ec);
    CHECK(priv.signature_size == 256);
    CHECK(attr(pub, CKA_MODULUS).value.size() == 256);
    CHECK(attr(pub, CKA_PUBLIC_EXPONENT).value == std::vector<uint8_t>{1, 0, 1});
    CK_ULONG bits = 0;
    std::memcpy(&bits, attr(pub, CKA_MODULUS_BITS).value.data(), sizeof bits);
    CHECK(bits == 2048);
    CHECK_FALSE(bool_attr(priv, CKA_ALWAYS_SENSITIVE));  // the device did not say so
}

TEST_CASE("a GET_KEY answer that does not parse is refused, not half-described") {
    ipc::KeyInfo key;
    key.name = "bad";
    key.spki = {0x30, 0x03, 0x02, 0x01, 0x00};
    CHECK_FALSE(objects_for_key(key).ok());
    key.spki = spki_of("EC", "group", "P-256");
    key.spki.pop_back();
    CHECK_FALSE(objects_for_key(key).ok());
    key.spki = spki_of("EC", "group", "P-256");
    key.certificates = {{0x30, 0x82, 0x01}};
    CHECK_FALSE(objects_for_key(key).ok());
}

TEST_CASE("a template matches by exact attribute value") {
    ipc::KeyInfo key;
    key.name = "k";
    key.spki = spki_of("EC", "group", "P-256");
    auto objects = objects_for_key(key);
    REQUIRE(objects.ok());
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE by_class{CKA_CLASS, &cls, sizeof cls};
    CHECK(objects->at(0).matches({&by_class, 1}));
    CHECK_FALSE(objects->at(1).matches({&by_class, 1}));
    char label[] = "k";
    CK_ATTRIBUTE by_label{CKA_LABEL, label, 1};
    CHECK(objects->at(1).matches({&by_label, 1}));
    CK_ATTRIBUTE by_short_label{CKA_LABEL, label, 0};
    CHECK_FALSE(objects->at(1).matches({&by_short_label, 1}));
    CHECK(objects->at(1).matches({}));
}
