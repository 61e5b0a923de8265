// Validation of issued certificates against software CAs and keys made here: the good case
// and each way a CA's answer can be wrong.
#include <catch2/catch.hpp>

#include <ctime>
#include <string>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/durable_file.hpp"
#include "pki/certificates.hpp"
#include "tests/lifecycle/fakes.hpp"

using namespace keyward;
using namespace keyward::pki;
using keyward::lifecycle::testing::add_extension;
using keyward::lifecycle::testing::make_key;
using keyward::lifecycle::testing::spki_of;

namespace {

using ossl::PKey;

PKey ec_key() { return make_key(KeyType::ec_p256); }

struct CertSpec {
    std::string cn = "web.example";
    long not_before = -60;  // seconds from now
    long not_after = 86400;
    const char* eku = "clientAuth";  // nullptr: no EKU extension
    const char* sans = "DNS:web.example";
    bool ca = false;
};

ossl::Cert make_cert(const CertSpec& spec, EVP_PKEY* subject_key, X509* issuer, EVP_PKEY* issuer_key) {
    static long serial = 100;
    ossl::Cert cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), ++serial);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), spec.not_before);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), spec.not_after);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1,
                               -1, 0);
    X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
    X509_set_pubkey(cert.get(), subject_key);
    X509* signer = issuer ? issuer : cert.get();
    if (spec.ca) {
        add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
        add_extension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
        add_extension(cert.get(), signer, NID_key_usage, "critical,digitalSignature");
        if (spec.eku) add_extension(cert.get(), signer, NID_ext_key_usage, spec.eku);
        if (spec.sans) add_extension(cert.get(), signer, NID_subject_alt_name, spec.sans);
    }
    REQUIRE(X509_sign(cert.get(), issuer_key, EVP_sha256()) > 0);
    return cert;
}

struct Ca {
    PKey key = ec_key();
    ossl::Cert cert;
    keyward::lifecycle::testing::TempDir dir;
    std::string file = dir.path() + "/ca.pem";
    explicit Ca(const std::string& cn) {
        CertSpec spec;
        spec.cn = cn;
        spec.ca = true;
        spec.not_after = 30 * 86400;
        cert = make_cert(spec, key.get(), nullptr, key.get());
        REQUIRE(keyward::files::write_new(file, to_pem(cert.get())).ok());
    }
};

Expectations expect_for(const Ca& ca, EVP_PKEY* device_key) {
    Expectations e;
    e.trust_anchors = ca.file;
    e.spki = spki_of(device_key);
    e.require_client_auth = true;
    keyward::pki::SubjectAltName san;
    san.kind = keyward::pki::SanKind::dns;
    san.value = "web.example";
    e.sans = {san};
    e.now = static_cast<int64_t>(std::time(nullptr));
    return e;
}

}  // namespace

TEST_CASE("a correct certificate passes and is described", "[validation]") {
    Ca ca("Test CA");
    PKey device = ec_key();
    auto cert = make_cert({}, device.get(), ca.cert.get(), ca.key.get());
    auto r = validate_issued(to_pem(cert.get()), "", expect_for(ca, device.get()));
    REQUIRE(r.ok());
    CHECK(r->info.subject == "/CN=web.example");
    CHECK(r->info.issuer == "/CN=Test CA");
    CHECK(r->info.client_auth);
    CHECK(r->info.sans == std::vector<std::string>{"dns:web.example"});
    CHECK(r->chain_pem.empty());
}

TEST_CASE("an intermediate in the answer becomes the chain; order does not matter", "[validation]") {
    Ca root("Root");
    PKey inter_key = ec_key();
    CertSpec inter_spec;
    inter_spec.cn = "Intermediate";
    inter_spec.ca = true;
    auto inter = make_cert(inter_spec, inter_key.get(), root.cert.get(), root.key.get());
    PKey device = ec_key();
    auto leaf = make_cert({}, device.get(), inter.get(), inter_key.get());
    // The chain first, then the leaf: the certificate for our key is found wherever it is.
    auto r = validate_issued(to_pem(inter.get()) + to_pem(leaf.get()), "", expect_for(root, device.get()));
    REQUIRE(r.ok());
    CHECK(r->cert_pem == to_pem(leaf.get()));
    CHECK(r->chain_pem == to_pem(inter.get()));
    // Without the intermediate it cannot chain.
    auto alone = validate_issued(to_pem(leaf.get()), "", expect_for(root, device.get()));
    REQUIRE_FALSE(alone.ok());
    CHECK_THAT(alone.status().message, Catch::Contains("does not chain to the trust anchors"));
}

TEST_CASE("a certificate for another key is refused", "[validation]") {
    Ca ca("Test CA");
    PKey device = ec_key(), other = ec_key();
    auto cert = make_cert({}, other.get(), ca.cert.get(), ca.key.get());
    auto r = validate_issued(to_pem(cert.get()), "", expect_for(ca, device.get()));
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message, Catch::Contains("for another key"));
}

TEST_CASE("a certificate without clientAuth is refused when it is required", "[validation]") {
    Ca ca("Test CA");
    PKey device = ec_key();
    CertSpec server_only;
    server_only.eku = "serverAuth";
    auto cert = make_cert(server_only, device.get(), ca.cert.get(), ca.key.get());
    auto r = validate_issued(to_pem(cert.get()), "", expect_for(ca, device.get()));
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message, Catch::Contains("lacks clientAuth"));

    CertSpec no_eku;
    no_eku.eku = nullptr;
    cert = make_cert(no_eku, device.get(), ca.cert.get(), ca.key.get());
    r = validate_issued(to_pem(cert.get()), "", expect_for(ca, device.get()));
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message, Catch::Contains("no extended key usage"));

    Expectations relaxed = expect_for(ca, device.get());
    relaxed.require_client_auth = false;
    CHECK(validate_issued(to_pem(cert.get()), "", relaxed).ok());
}

TEST_CASE("a certificate from another CA does not chain", "[validation]") {
    Ca ca("Test CA"), rogue("Rogue CA");
    PKey device = ec_key();
    auto cert = make_cert({}, device.get(), rogue.cert.get(), rogue.key.get());
    auto r = validate_issued(to_pem(cert.get()), to_pem(rogue.cert.get()), expect_for(ca, device.get()));
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message, Catch::Contains("fails verification"));
}

TEST_CASE("expired and not-yet-valid certificates are refused", "[validation]") {
    Ca ca("Test CA");
    PKey device = ec_key();
    CertSpec expired;
    expired.not_before = -7200;
    expired.not_after = -3600;
    auto cert = make_cert(expired, device.get(), ca.cert.get(), ca.key.get());
    auto r = validate_issued(to_pem(cert.get()), "", expect_for(ca, device.get()));
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message, Catch::Contains("already expired"));

    CertSpec future;
    future.not_before = 86400;
    future.not_after = 2 * 86400;
    cert = make_cert(future, device.get(), ca.cert.get(), ca.key.get());
    r = validate_issued(to_pem(cert.get()), "", expect_for(ca, device.get()));
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message, Catch::Contains("not valid before"));
}

TEST_CASE("a requested SAN missing from the certificate is refused", "[validation]") {
    Ca ca("Test CA");
    PKey device = ec_key();
    CertSpec other_name;
    other_name.sans = "DNS:other.example";
    auto cert = make_cert(other_name, device.get(), ca.cert.get(), ca.key.get());
    auto r = validate_issued(to_pem(cert.get()), "", expect_for(ca, device.get()));
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message, Catch::Contains("lacks the requested subject alternative name dns:web.example"));
}

TEST_CASE("garbage is not a certificate", "[validation]") {
    Ca ca("Test CA");
    PKey device = ec_key();
    auto r = validate_issued("hello, I am a CA\n", "", expect_for(ca, device.get()));
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message, Catch::Contains("no PEM certificate"));
    Expectations missing = expect_for(ca, device.get());
    missing.trust_anchors = "/nonexistent/ca.pem";
    auto cert = make_cert({}, device.get(), ca.cert.get(), ca.key.get());
    r = validate_issued(to_pem(cert.get()), "", missing);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message, Catch::Contains("cannot read the trust anchors"));
}
