// RFC 7512 token URIs: what selects a token, and clear refusals for everything else.
#include <catch2/catch.hpp>

#include "pkcs11/uri.hpp"

using keyward::ErrorCode;
using keyward::pkcs11::parse_token_uri;

TEST_CASE("URI: token label, percent-decoded", "[uri]") {
    auto uri = parse_token_uri("pkcs11:token=My%20Token%3b1");
    REQUIRE(uri.ok());
    CHECK(uri->token == "My Token;1");
    CHECK(!uri->manufacturer);
    CHECK(!uri->serial);
    CHECK(!uri->model);
    CHECK(!uri->slot_id);
}

TEST_CASE("URI: every supported attribute", "[uri]") {
    auto uri = parse_token_uri(
        "pkcs11:token=keyward;manufacturer=SoftHSM%20project;serial=0123abcd;"
        "model=SoftHSM%20v2;slot-id=42");
    REQUIRE(uri.ok());
    CHECK(uri->token == "keyward");
    CHECK(uri->manufacturer == "SoftHSM project");
    CHECK(uri->serial == "0123abcd");
    CHECK(uri->model == "SoftHSM v2");
    CHECK(uri->slot_id == 42u);
}

TEST_CASE("URI: a bare pkcs11: matches any token", "[uri]") {
    auto uri = parse_token_uri("pkcs11:");
    REQUIRE(uri.ok());
    CHECK(!uri->token);
    CHECK(parse_token_uri("PKCS11:token=x").ok());  // the scheme is case-insensitive
}

TEST_CASE("URI: unknown attributes are refused by name", "[uri]") {
    auto uri = parse_token_uri("pkcs11:token=a;object=key1;library-version=3");
    REQUIRE(!uri.ok());
    CHECK(uri.status().code == ErrorCode::invalid_argument);
    CHECK_THAT(uri.status().message, Catch::Contains("'object', 'library-version'"));
}

TEST_CASE("URI: query attributes (pin-value and friends) are refused", "[uri]") {
    auto uri = parse_token_uri("pkcs11:token=a?pin-value=1234");
    REQUIRE(!uri.ok());
    CHECK(uri.status().code == ErrorCode::invalid_argument);
    CHECK_THAT(uri.status().message, Catch::Contains("query attributes"));
}

TEST_CASE("URI: truncated and malformed %-escapes", "[uri]") {
    for (const char* text : {"pkcs11:token=abc%", "pkcs11:token=abc%4", "pkcs11:token=%zz", "pkcs11:token=a%g1b"}) {
        INFO(text);
        auto uri = parse_token_uri(text);
        REQUIRE(!uri.ok());
        CHECK(uri.status().code == ErrorCode::invalid_argument);
        CHECK_THAT(uri.status().message, Catch::Contains("escape"));
    }
}

TEST_CASE("URI: garbage", "[uri]") {
    for (const char* text :
         {"", "pkcs11", "token=abc", "http://x", "pkcs11:token", "pkcs11:token=", "pkcs11:token=a;;serial=b",
          "pkcs11:token=a;token=b", "pkcs11:slot-id=abc", "pkcs11:slot-id=-1", "pkcs11:slot-id=99999999999999999999999",
          "pkcs11:=x", "pkcs11:token=a\nb"}) {
        INFO("'" << text << "'");
        auto uri = parse_token_uri(text);
        REQUIRE(!uri.ok());
        CHECK(uri.status().code == ErrorCode::invalid_argument);
        CHECK_THAT(uri.status().message, Catch::Contains("invalid PKCS#11 URI"));
    }
}

TEST_CASE("URI: a trailing ';' is tolerated", "[uri]") {
    auto uri = parse_token_uri("pkcs11:token=a;");
    REQUIRE(uri.ok());
    CHECK(uri->token == "a");
}
