// build_csr with a signing callback backed by an in-process OpenSSL software key: the
// request verifies, holds the key, the subject, the SANs and the clientAuth EKU, and is
// signed with the scheme that fits the key.
#include <memory>

#include <catch2/catch.hpp>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "pki/csr.hpp"
#include "core/ossl.hpp"

namespace ossl = keyward::ossl;
using keyward::ErrorCode;
using keyward::Result;
using keyward::Scheme;
using keyward::Status;
using keyward::pki::build_csr;
using keyward::pki::CsrRequest;
using keyward::pki::parse_san;
using keyward::pki::parse_subject;

namespace {

using PKeyCtx = std::unique_ptr<EVP_PKEY_CTX, ossl::Free<EVP_PKEY_CTX_free>>;

struct SoftwareKey {
    ossl::PKey key;
    std::vector<uint8_t> spki;
};

SoftwareKey make_key(const char* type, const char* param) {
    SoftwareKey k;
    if (std::string_view(type) == "RSA") k.key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
    else k.key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", param));
    REQUIRE(k.key);
    unsigned char* der = nullptr;
    const int len = i2d_PUBKEY(k.key.get(), &der);
    REQUIRE(len > 0);
    k.spki.assign(der, der + len);
    OPENSSL_free(der);
    return k;
}

// What the agent does for a digest: ECDSA → DER signature; RSA PKCS#1 → DigestInfo block.
Result<std::vector<uint8_t>> software_sign(EVP_PKEY* key, Scheme scheme, std::span<const uint8_t> digest) {
    PKeyCtx ctx(EVP_PKEY_CTX_new(key, nullptr));
    if (!ctx || EVP_PKEY_sign_init(ctx.get()) <= 0) return Status{ErrorCode::internal, "sign init"};
    if (scheme == Scheme::rsa_pkcs1_sha256) {
        if (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) <= 0 ||
            EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) <= 0)
            return Status{ErrorCode::internal, "rsa params"};
    }
    size_t len = 0;
    if (EVP_PKEY_sign(ctx.get(), nullptr, &len, digest.data(), digest.size()) <= 0)
        return Status{ErrorCode::internal, "sign size"};
    std::vector<uint8_t> sig(len);
    if (EVP_PKEY_sign(ctx.get(), sig.data(), &len, digest.data(), digest.size()) <= 0)
        return Status{ErrorCode::internal, "sign"};
    sig.resize(len);
    return sig;
}

ossl::Req parse_pem(const std::string& pem) {
    ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    ossl::Req req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
    REQUIRE(req);
    return req;
}

std::string name_entry(X509_REQ* req, int nid) {
    char buf[256] = {};
    const int n = X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), nid, buf, sizeof buf);
    return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

CsrRequest full_request() {
    CsrRequest request;
    request.subject = parse_subject("/CN=device-7/O=keyward tests").value();
    for (const char* san : {"dns:client.example", "ip:127.0.0.1", "ip:2001:db8::1", "email:ops@example.org",
                            "uri:spiffe://example.org/client"})
        request.sans.push_back(parse_san(san).value());
    return request;
}

void check_extensions(X509_REQ* req, bool expect_sans) {
    ossl::Extensions exts(X509_REQ_get_extensions(req));
    REQUIRE(exts);

    ossl::Eku eku(static_cast<EXTENDED_KEY_USAGE*>(X509V3_get_d2i(exts.get(), NID_ext_key_usage, nullptr, nullptr)));
    REQUIRE(eku);
    REQUIRE(sk_ASN1_OBJECT_num(eku.get()) == 1);
    CHECK(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku.get(), 0)) == NID_client_auth);

    ossl::GeneralNames names(
        static_cast<GENERAL_NAMES*>(X509V3_get_d2i(exts.get(), NID_subject_alt_name, nullptr, nullptr)));
    if (!expect_sans) {
        CHECK_FALSE(names);
        return;
    }
    REQUIRE(names);
    REQUIRE(sk_GENERAL_NAME_num(names.get()) == 5);
    const auto text = [&](int i, int expected_type) {
        int type = -1;
        auto* value = static_cast<ASN1_STRING*>(GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(names.get(), i), &type));
        CHECK(type == expected_type);
        return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                           static_cast<size_t>(ASN1_STRING_length(value)));
    };
    CHECK(text(0, GEN_DNS) == "client.example");
    CHECK(text(1, GEN_IPADD) == std::string("\x7f\x00\x00\x01", 4));
    const std::string v6 = text(2, GEN_IPADD);
    CHECK(v6.size() == 16);
    CHECK(v6.substr(0, 4) == "\x20\x01\x0d\xb8");
    CHECK(text(3, GEN_EMAIL) == "ops@example.org");
    CHECK(text(4, GEN_URI) == "spiffe://example.org/client");
}

}  // namespace

TEST_CASE("build_csr: a software-signed request verifies and carries subject, SANs and clientAuth") {
    struct Case {
        const char* type;
        const char* param;
        Scheme scheme;
        size_t digest_size;
        int signature_nid;
    };
    const Case cases[] = {
        {"EC", "P-256", Scheme::ecdsa_secp256r1_sha256, 32, NID_ecdsa_with_SHA256},
        {"EC", "P-384", Scheme::ecdsa_secp384r1_sha384, 48, NID_ecdsa_with_SHA384},
        {"RSA", nullptr, Scheme::rsa_pkcs1_sha256, 32, NID_sha256WithRSAEncryption},
    };
    for (const auto& c : cases) {
        SECTION(std::string(c.type) + (c.param ? std::string(" ") + c.param : std::string())) {
            SoftwareKey key = make_key(c.type, c.param);
            int calls = 0;
            const keyward::pki::SignFn sign = [&](Scheme scheme, std::span<const uint8_t> digest) {
                ++calls;
                CHECK(scheme == c.scheme);
                CHECK(digest.size() == c.digest_size);
                return software_sign(key.key.get(), scheme, digest);
            };
            CsrRequest request = full_request();
            request.key_schemes = {Scheme::rsa_pss_rsae_sha256, c.scheme};
            auto pem = build_csr(request, key.spki, sign);
            REQUIRE(pem.ok());
            CHECK(calls == 1);
            CHECK(pem.value().rfind("-----BEGIN CERTIFICATE REQUEST-----", 0) == 0);

            ossl::Req req = parse_pem(pem.value());
            CHECK(X509_REQ_verify(req.get(), key.key.get()) == 1);
            CHECK(X509_REQ_get_version(req.get()) == X509_REQ_VERSION_1);
            CHECK(X509_REQ_get_signature_nid(req.get()) == c.signature_nid);
            // The request holds the key we gave it, byte for byte.
            unsigned char* der = nullptr;
            const int len = i2d_PUBKEY(X509_REQ_get0_pubkey(req.get()), &der);
            REQUIRE(len > 0);
            CHECK(std::vector<uint8_t>(der, der + len) == key.spki);
            OPENSSL_free(der);

            CHECK(name_entry(req.get(), NID_commonName) == "device-7");
            CHECK(name_entry(req.get(), NID_organizationName) == "keyward tests");
            check_extensions(req.get(), true);
        }
    }
}

TEST_CASE("build_csr: without SANs there is no subjectAltName but still clientAuth") {
    SoftwareKey key = make_key("EC", "P-256");
    CsrRequest request;
    request.subject = parse_subject("/CN=plain").value();
    auto pem = build_csr(request, key.spki,
                         [&](Scheme s, std::span<const uint8_t> d) { return software_sign(key.key.get(), s, d); });
    REQUIRE(pem.ok());
    ossl::Req req = parse_pem(pem.value());
    CHECK(X509_REQ_verify(req.get(), key.key.get()) == 1);
    check_extensions(req.get(), false);
}

TEST_CASE("build_csr: the signer's error comes back unchanged") {
    SoftwareKey key = make_key("EC", "P-256");
    auto pem =
        build_csr(full_request(), key.spki, [](Scheme, std::span<const uint8_t>) -> Result<std::vector<uint8_t>> {
            return Status{ErrorCode::access_denied, "uid 65534 may not use key web"};
        });
    REQUIRE_FALSE(pem.ok());
    CHECK(pem.status().code == ErrorCode::access_denied);
    CHECK(pem.status().message == "uid 65534 may not use key web");
}

TEST_CASE("build_csr: a signature by another key is caught before the request is returned") {
    SoftwareKey key = make_key("EC", "P-256");
    SoftwareKey other = make_key("EC", "P-256");
    auto pem = build_csr(full_request(), key.spki,
                         [&](Scheme s, std::span<const uint8_t> d) { return software_sign(other.key.get(), s, d); });
    REQUIRE_FALSE(pem.ok());
    CHECK(pem.status().code == ErrorCode::device_error);
    CHECK_THAT(pem.status().message, Catch::Contains("does not verify"));
}

TEST_CASE("build_csr: a key whose device lacks the needed scheme is refused without signing") {
    SoftwareKey key = make_key("RSA", nullptr);
    CsrRequest request = full_request();
    request.key_schemes = {Scheme::rsa_pss_rsae_sha256};
    bool called = false;
    auto pem = build_csr(request, key.spki, [&](Scheme, std::span<const uint8_t>) -> Result<std::vector<uint8_t>> {
        called = true;
        return std::vector<uint8_t>{};
    });
    REQUIRE_FALSE(pem.ok());
    CHECK(pem.status().code == ErrorCode::unsupported_scheme);
    CHECK_THAT(pem.status().message, Catch::Contains("rsa_pkcs1_sha256"));
    CHECK_FALSE(called);
}

TEST_CASE("build_csr: a malformed public key is refused") {
    const std::vector<uint8_t> junk = {0x30, 0x03, 0x02, 0x01, 0x00};
    auto pem = build_csr(full_request(), junk, [](Scheme, std::span<const uint8_t>) -> Result<std::vector<uint8_t>> {
        FAIL("must not sign");
        return std::vector<uint8_t>{};
    });
    REQUIRE_FALSE(pem.ok());
    CHECK(pem.status().code == ErrorCode::invalid_argument);
}
