// Parsing of `keyward csr` subjects (/K=V with escapes) and subjectAltNames (KIND:VALUE).
#include <catch2/catch.hpp>
#include <openssl/err.h>

#include "pki/csr.hpp"

using keyward::ErrorCode;
using keyward::pki::parse_san;
using keyward::pki::parse_subject;
using keyward::pki::SanKind;
using keyward::pki::SubjectAttribute;
using Attrs = std::vector<SubjectAttribute>;

TEST_CASE("subject: plain components in order") {
    auto r = parse_subject("/CN=client/O=keyward tests/OU=ops/C=DE");
    REQUIRE(r.ok());
    CHECK(r.value() == Attrs{{"CN", "client"}, {"O", "keyward tests"}, {"OU", "ops"}, {"C", "DE"}});
}

TEST_CASE("subject: backslash escapes slash, backslash and equals") {
    auto r = parse_subject(R"(/CN=a\/b/O=back\\slash/OU=x\=y)");
    REQUIRE(r.ok());
    CHECK(r.value() == Attrs{{"CN", "a/b"}, {"O", "back\\slash"}, {"OU", "x=y"}});
}

TEST_CASE("subject: '=' and '+' inside a value are literal, trailing slash is accepted") {
    auto r = parse_subject("/CN=a=b+c/");
    REQUIRE(r.ok());
    CHECK(r.value() == Attrs{{"CN", "a=b+c"}});
}

TEST_CASE("subject: long names and OIDs are accepted as types") {
    auto r = parse_subject("/commonName=x/2.5.4.10=org/emailAddress=a@b.example");
    REQUIRE(r.ok());
    CHECK(r.value().size() == 3);
    CHECK(r.value()[1].type == "2.5.4.10");
}

// Found by fuzzing (tests/fuzz/corpus/names/unknown-type): the refusal left OpenSSL's "unknown
// object name" on the thread's error queue, where the next unrelated OpenSSL failure would report
// it as its own cause.
TEST_CASE("subject: a refused attribute type leaves no error on OpenSSL's queue") {
    ERR_clear_error();
    CHECK_FALSE(parse_subject("/CN=web/ca.p=web").ok());
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("subject: UTF-8 values are kept") {
    auto r = parse_subject("/CN=J\xc3\xbcrgen");
    REQUIRE(r.ok());
    CHECK(r.value()[0].value == "J\xc3\xbcrgen");
}

TEST_CASE("subject: garbage gives a clear error") {
    struct Case {
        const char* text;
        const char* says;
    };
    const Case cases[] = {
        {"CN=x", "does not start with '/'"},
        {"", "does not start with '/'"},
        {"/", "empty component"},
        {"/CN=x//O=y", "empty component"},
        {"/CN", "has no '='"},
        {"/=x", "no type"},
        {"/CN=", "empty value"},
        {"/CN=x\\", "lone backslash"},
        {"/XYZZY=x", "unknown attribute type \"XYZZY\""},
        {"/C=Germany", "OpenSSL refuses the value of C"},
    };
    for (const auto& c : cases) {
        INFO(c.text);
        auto r = parse_subject(c.text);
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().code == ErrorCode::invalid_argument);
        CHECK_THAT(r.status().message, Catch::Contains(c.says));
        CHECK_THAT(r.status().message, Catch::Contains("/CN=client/O=Example"));  // says how to write it
    }
}

TEST_CASE("san: each kind") {
    auto dns = parse_san("dns:client.example");
    REQUIRE(dns.ok());
    CHECK(dns->kind == SanKind::dns);
    CHECK(dns->value == "client.example");

    auto wildcard = parse_san("DNS:*.example.org");
    REQUIRE(wildcard.ok());
    CHECK(wildcard->kind == SanKind::dns);

    auto v4 = parse_san("ip:127.0.0.1");
    REQUIRE(v4.ok());
    CHECK(v4->kind == SanKind::ip);
    CHECK(v4->ip == std::vector<uint8_t>{127, 0, 0, 1});

    auto v6 = parse_san("IP:2001:db8::1");
    REQUIRE(v6.ok());
    REQUIRE(v6->ip.size() == 16);
    CHECK(v6->ip[0] == 0x20);
    CHECK(v6->ip[1] == 0x01);
    CHECK(v6->ip[15] == 0x01);
    CHECK(v6->value == "2001:db8::1");

    auto email = parse_san("email:ops@example.org");
    REQUIRE(email.ok());
    CHECK(email->kind == SanKind::email);
    CHECK(email->value == "ops@example.org");

    auto uri = parse_san("uri:spiffe://example.org/client");
    REQUIRE(uri.ok());
    CHECK(uri->kind == SanKind::uri);
    CHECK(uri->value == "spiffe://example.org/client");
}

TEST_CASE("san: bad values and unknown kinds are refused with the offending text") {
    struct Case {
        const char* text;
        const char* says;
    };
    const Case cases[] = {
        {"ip:999.1.1.1", "not an IPv4 or IPv6 address"},
        {"ip:localhost", "not an IPv4 or IPv6 address"},
        {"ip:1.2.3", "not an IPv4 or IPv6 address"},
        {"ip:2001:db8:::1", "not an IPv4 or IPv6 address"},
        {"carrier-pigeon:42", "unknown SAN kind \"carrier-pigeon\""},
        {"client.example", "KIND:VALUE"},
        {"dns:", "empty"},
        {"dns:has space", "not a DNS name"},
        {"dns:a/b", "not a DNS name"},
        {"email:nobody", "not an e-mail address"},
        {"email:@example.org", "not an e-mail address"},
        {"uri:no-scheme", "not an absolute URI"},
    };
    for (const auto& c : cases) {
        INFO(c.text);
        auto r = parse_san(c.text);
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().code == ErrorCode::invalid_argument);
        CHECK_THAT(r.status().message, Catch::Contains(c.says));
        CHECK_THAT(r.status().message, Catch::Contains(c.text));
    }
}
