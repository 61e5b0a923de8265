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

TEST_CASE("object URI: a card's key by two-byte id, by label with spaces, or both", "[uri]") {
    using keyward::pkcs11::parse_object_uri;
    auto by_id = parse_object_uri("pkcs11:id=%00%01");
    REQUIRE(by_id.ok());
    CHECK(by_id->id == std::string("\x00\x01", 2));
    CHECK(!by_id->object);
    auto by_label = parse_object_uri("pkcs11:object=CAC%20ID%20Certificate;type=private");
    REQUIRE(by_label.ok());
    CHECK(by_label->object == "CAC ID Certificate");
    auto both = parse_object_uri("PKCS11:id=%02;object=Card%20Authentication");
    REQUIRE(both.ok());
    CHECK(both->id == std::string("\x02", 1));
    CHECK(both->object == "Card Authentication");
}

TEST_CASE("object URI: truncated, garbage, oversized and ambiguous input is refused by name", "[uri]") {
    using keyward::pkcs11::parse_object_uri;
    for (const char* bad : {"", "pkcs11", "pkcs11:", "pkcs11:id=%0", "pkcs11:id=%zz", "pkcs11:id=", "pkcs11:id",
                            "pkcs11:id=%01;id=%02", "pkcs11:type=public;id=%01", "pkcs11:token=x",
                            "pkcs11:id=%01?pin-value=1", "pkcs11:;", "file:id=%01", "pkcs11:type=private"}) {
        auto r = parse_object_uri(bad);
        INFO(bad);
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().code == ErrorCode::invalid_argument);
    }
    std::string big = "pkcs11:object=" + std::string(100000, 'a');
    auto r = parse_object_uri(big);
    REQUIRE(r.ok());
    CHECK(r->object->size() == 100000);
    std::string ctl = "pkcs11:object=a\nb";
    CHECK_FALSE(parse_object_uri(ctl).ok());
}

// Both parsers walk their attributes with one splitter: each edge it handles is pinned for both.
TEST_CASE("URI: the shared attribute walk refuses the same edges for token and object URIs", "[uri]") {
    using keyward::pkcs11::parse_object_uri;
    struct Edge {
        const char* token_uri;
        const char* object_uri;
        const char* says;
    };
    for (const Edge& edge : {
             Edge{"pkcs11:token=a;;serial=b", "pkcs11:id=%01;;object=b", "empty attribute (stray ';')"},
             Edge{"pkcs11:;token=a", "pkcs11:;id=%01", "empty attribute (stray ';')"},
             Edge{"pkcs11:token=a;token=b", "pkcs11:object=a;object=b", "appears twice"},
             Edge{"pkcs11:token=%0", "pkcs11:id=%0", "truncated %-escape"},
             Edge{"pkcs11:token=a%0", "pkcs11:object=a%0", "truncated %-escape"},
             Edge{"pkcs11:token=%g0", "pkcs11:id=%g0", "bad %-escape"},
             Edge{"pkcs11:=a", "pkcs11:=%01", "attribute without a name"},
             Edge{"pkcs11:token", "pkcs11:id", "has no '=value'"},
             Edge{"pkcs11:token=", "pkcs11:object=", "has an empty value"},
             Edge{"pkcs11:token=a%0Ab", "pkcs11:object=a%0Ab;type=private", nullptr},
         }) {
        INFO(edge.token_uri << " / " << edge.object_uri);
        auto token = parse_token_uri(edge.token_uri);
        auto object = parse_object_uri(edge.object_uri);
        if (edge.says == nullptr) {
            // A %-escaped control byte is data, not a control character in the URI text.
            REQUIRE(token.ok());
            REQUIRE(object.ok());
            CHECK(token->token == "a\nb");
            CHECK(object->object == "a\nb");
            continue;
        }
        REQUIRE_FALSE(token.ok());
        REQUIRE_FALSE(object.ok());
        CHECK(token.status().code == ErrorCode::invalid_argument);
        CHECK(object.status().code == ErrorCode::invalid_argument);
        CHECK_THAT(token.status().message, Catch::Contains(edge.says));
        CHECK_THAT(object.status().message, Catch::Contains(edge.says));
    }
}

TEST_CASE("URI: percent-escapes decode in every attribute, case-insensitive hex", "[uri]") {
    using keyward::pkcs11::parse_object_uri;
    auto token = parse_token_uri("pkcs11:token=%41%62;serial=%3B%3d;slot-id=%34%32");
    REQUIRE(token.ok());
    CHECK(token->token == "Ab");
    CHECK(token->serial == ";=");
    CHECK(token->slot_id == 42u);
    auto object = parse_object_uri("pkcs11:id=%ff%FF%00;object=%25");
    REQUIRE(object.ok());
    CHECK(object->id == std::string("\xff\xff\x00", 3));
    CHECK(object->object == "%");
}
