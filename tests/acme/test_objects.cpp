// The CA's JSON resources, the PEM chain download and the CSR reader: garbage in, clear
// error out; good input, the right fields.
#include <catch2/catch.hpp>

#include <memory>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "agent/lifecycle/acme/acme_objects.hpp"
#include "pki/certificates.hpp"
#include "pki/csr.hpp"

using namespace keyward::acme;
using keyward::pki::parse_pem_chain;
using keyward::pki::read_csr;

namespace {

std::string cert_pem(const char* cn) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                               -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_sign(x, key, EVP_sha256());
    BIO* mem = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(mem, x);
    char* data = nullptr;
    long len = BIO_get_mem_data(mem, &data);
    std::string out(data, static_cast<size_t>(len));
    BIO_free(mem);
    X509_free(x);
    EVP_PKEY_free(key);
    return out;
}

std::string csr_pem(const char* cn, const char* san, bool corrupt_signature = false) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509_REQ* req = X509_REQ_new();
    X509_REQ_set_pubkey(req, key);
    if (cn)
        X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
    if (san) {
        STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
        sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san));
        X509_REQ_add_extensions(req, exts);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    X509_REQ_sign(req, key, EVP_sha256());
    if (corrupt_signature) {
        const ASN1_BIT_STRING* sig = nullptr;
        X509_REQ_get0_signature(req, &sig, nullptr);
        const_cast<unsigned char*>(ASN1_STRING_get0_data(sig))[10] ^= 0x55;
    }
    BIO* mem = BIO_new(BIO_s_mem());
    PEM_write_bio_X509_REQ(mem, req);
    char* data = nullptr;
    long len = BIO_get_mem_data(mem, &data);
    std::string out(data, static_cast<size_t>(len));
    BIO_free(mem);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return out;
}

}  // namespace

TEST_CASE("directory: the three URLs the flow needs, meta read when present", "[acme][json]") {
    auto d =
        parse_directory(R"({"newNonce":"https://x/nonce","newAccount":"https://x/acct","newOrder":"https://x/order",
        "revokeCert":"https://x/revoke","meta":{"termsOfService":"https://x/tos","externalAccountRequired":false}})");
    REQUIRE(d.ok());
    CHECK(d->new_nonce == "https://x/nonce");
    CHECK(d->new_order == "https://x/order");
    CHECK(d->terms_of_service == "https://x/tos");
    CHECK_FALSE(d->external_account_required);
    for (const char* bad :
         {"", "{", "[]", "\"text\"", "null", "<html>500</html>", R"({"newNonce":"a","newAccount":"b"})",
          R"({"newNonce":1,"newAccount":"b","newOrder":"c"})", "{\"newNonce\":\"a\xff\"}"}) {
        INFO(bad);
        auto r = parse_directory(bad);
        CHECK_FALSE(r.ok());
        CHECK(r.status().message.find("directory") != std::string::npos);
    }
    CHECK_FALSE(parse_directory(std::string(300 * 1024, ' ') + "{}").ok());
    std::string deep(100000, '[');
    CHECK_FALSE(parse_directory(deep).ok());
}

TEST_CASE("order: status, authorizations, finalize, certificate, error", "[acme][json]") {
    auto o = parse_order(R"({"status":"invalid","expires":"2030-01-01T00:00:00Z","identifiers":[],
        "authorizations":["https://x/authz/1","https://x/authz/2"],"finalize":"https://x/fin/1",
        "error":{"type":"urn:ietf:params:acme:error:badCSR","detail":"CN not in SANs"}})");
    REQUIRE(o.ok());
    CHECK(o->status == "invalid");
    CHECK(o->authorizations.size() == 2);
    CHECK(o->finalize == "https://x/fin/1");
    CHECK(o->certificate.empty());
    REQUIRE(o->error);
    CHECK(o->error->short_type() == "badCSR");
    CHECK(o->error->describe() == "badCSR: CN not in SANs");
    for (const char* bad :
         {R"({"status":"valid","finalize":"f"})", R"({"status":"valid","finalize":"f","authorizations":"a"})",
          R"({"status":"valid","finalize":"f","authorizations":[1]})",
          R"({"status":5,"finalize":"f","authorizations":[]})",
          R"({"status":"valid","finalize":"f","authorizations":[],"certificate":{}})"}) {
        INFO(bad);
        CHECK_FALSE(parse_order(bad).ok());
    }
}

TEST_CASE("authorization with challenges; bad shapes refused", "[acme][json]") {
    auto a = parse_authorization(R"({"status":"pending","identifier":{"type":"dns","value":"a.example"},
        "challenges":[{"type":"http-01","url":"https://x/chal/1","token":"tok_-1","status":"pending"},
                      {"type":"dns-01","url":"https://x/chal/2","token":"tok2","status":"invalid",
                       "error":{"type":"urn:ietf:params:acme:error:dns","detail":"NXDOMAIN"}}]})");
    REQUIRE(a.ok());
    CHECK(a->identifier_value == "a.example");
    REQUIRE(a->challenges.size() == 2);
    CHECK(a->challenges[0].token == "tok_-1");
    REQUIRE(a->challenges[1].error);
    CHECK(a->challenges[1].error->describe() == "dns: NXDOMAIN");
    for (const char* bad :
         {R"({"status":"pending","challenges":[]})",
          R"({"status":"pending","identifier":{"type":"dns"},"challenges":[]})",
          R"({"status":"pending","identifier":{"type":"dns","value":"a"},"challenges":{}})",
          R"({"status":"pending","identifier":{"type":"dns","value":"a"},"challenges":[7]})",
          R"({"status":"pending","identifier":{"type":"dns","value":"a"},"challenges":[{"type":"http-01"}]})"}) {
        INFO(bad);
        CHECK_FALSE(parse_authorization(bad).ok());
    }
}

TEST_CASE("problem documents, with subproblems, and non-JSON bodies", "[acme][json]") {
    Problem p = parse_problem(R"({"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"no IPs",
        "subproblems":[{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"IP refused",
                        "identifier":{"type":"ip","value":"127.0.0.1"}}]})");
    CHECK(p.short_type() == "rejectedIdentifier");
    CHECK(p.describe() == "rejectedIdentifier: no IPs; 127.0.0.1: IP refused");
    Problem html = parse_problem("<html>\n<b>502 Bad Gateway</b>\x01</html>");
    CHECK(html.type.empty());
    CHECK(html.detail == "<html> <b>502 Bad Gateway</b> </html>");
    CHECK(parse_problem(std::string(1000, 'x')).detail.size() == 200);
    CHECK(parse_problem("").describe() == "no details");
}

TEST_CASE("PEM chain: end-entity first, each block one certificate", "[acme][pem]") {
    std::string a = cert_pem("leaf"), b = cert_pem("intermediate");
    auto chain = parse_pem_chain(a + "\n" + b);
    REQUIRE(chain.ok());
    REQUIRE(chain->size() == 2);
    CHECK(chain.value()[0] == a);
    CHECK(chain.value()[1] == b);
    auto crlf = a;
    for (size_t pos = 0; (pos = crlf.find('\n', pos)) != std::string::npos; pos += 2) crlf.replace(pos, 1, "\r\n");
    REQUIRE(parse_pem_chain(crlf).ok());
    CHECK(parse_pem_chain(crlf).value()[0] == a);
}

TEST_CASE("PEM chain: truncated, garbage and oversized answers are errors", "[acme][pem]") {
    std::string a = cert_pem("leaf");
    for (size_t cut : {size_t{0}, size_t{10}, a.size() / 2, a.size() - 27, a.size() - 2}) {
        INFO(cut);
        auto r = parse_pem_chain(a.substr(0, cut));
        CHECK_FALSE(r.ok());
    }
    std::string corrupted = a;
    corrupted[30] = 'A';  // "MIIB" -> "MIAB": an indefinite length, not DER
    CHECK_FALSE(parse_pem_chain(corrupted).ok());
    CHECK_FALSE(parse_pem_chain("hello " + a).ok());
    CHECK_FALSE(parse_pem_chain(a + "trailing junk").ok());
    CHECK_FALSE(parse_pem_chain("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n").ok());
    CHECK_FALSE(parse_pem_chain("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").ok());
    CHECK_FALSE(parse_pem_chain("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").ok());
    std::string many;
    for (int i = 0; i < 11; ++i) many += a;
    auto r = parse_pem_chain(many);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message.find("more than 10") != std::string::npos);
    CHECK_FALSE(parse_pem_chain(std::string(600 * 1024, '\n')).ok());
    CHECK(parse_pem_chain("").status().message == "certificate chain: no certificate in the answer");
}

TEST_CASE("read_csr: names, DER, and a signature that must verify", "[acme][pem]") {
    auto facts = read_csr(csr_pem("a.example", "DNS:a.example,DNS:b.example,IP:127.0.0.1"));
    REQUIRE(facts.ok());
    CHECK(facts->common_name == "a.example");
    CHECK(facts->dns_names == std::vector<std::string>{"a.example", "b.example"});
    CHECK(facts->ip_addresses == std::vector<std::string>{"127.0.0.1"});
    const unsigned char* p = facts->der.data();
    X509_REQ* req = d2i_X509_REQ(nullptr, &p, static_cast<long>(facts->der.size()));
    CHECK(req != nullptr);
    X509_REQ_free(req);
    auto nocn = read_csr(csr_pem(nullptr, "DNS:only.example"));
    REQUIRE(nocn.ok());
    CHECK(nocn->common_name.empty());
    CHECK_FALSE(read_csr(csr_pem("a.example", "DNS:a.example", true)).ok());
    CHECK_FALSE(read_csr("garbage").ok());
    CHECK_FALSE(read_csr(cert_pem("not a csr")).ok());
}
