// The CLI's --json documents: their text form (what scripts parse) and the shape of the
// key and status objects (docs/cli.md: field names and types are stable).
#include <catch2/catch.hpp>

#include "cli/json_output.hpp"
#include "cli/key_view.hpp"
#include "cli/status_view.hpp"

using keyward::cli::json_text;
using keyward::cli::JsonDocument;
using keyward::cli::key_json;
using keyward::cli::status_json;

namespace {

// The text of a one-member document {"s": text}, without the braces and indent.
std::string quoted(std::string_view text) {
    const std::string doc = json_text(JsonDocument{{"s", std::string(text)}});
    const std::string head = "{\n  \"s\": ";
    const std::string tail = "\n}\n";
    REQUIRE(doc.starts_with(head));
    REQUIRE(doc.ends_with(tail));
    return doc.substr(head.size(), doc.size() - head.size() - tail.size());
}

const std::string kReplacement = "\xef\xbf\xbd";  // U+FFFD in UTF-8

}  // namespace

TEST_CASE("json_text escapes quotes, backslashes and control characters") {
    CHECK(quoted("plain") == "\"plain\"");
    CHECK(quoted("a\"b") == "\"a\\\"b\"");
    CHECK(quoted("a\\b") == "\"a\\\\b\"");
    CHECK(quoted("l1\nl2\r\t") == "\"l1\\nl2\\r\\t\"");
    CHECK(quoted("\b\f") == "\"\\b\\f\"");
    CHECK(quoted(std::string_view("\0\x01\x1f", 3)) == "\"\\u0000\\u0001\\u001f\"");
    CHECK(quoted("/") == "\"/\"");
    CHECK(quoted("\x7f") == "\"\x7f\"");
}

TEST_CASE("json_text keeps valid UTF-8 and replaces each byte that is not UTF-8 with U+FFFD") {
    CHECK(quoted("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91") == "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91\"");
    const auto replaced = [](int n) {
        std::string out = "\"";
        for (int i = 0; i < n; ++i) out += kReplacement;
        return out + "\"";
    };
    CHECK(quoted("\xff") == replaced(1));
    CHECK(quoted("\xc3") == replaced(1));              // truncated sequence
    CHECK(quoted("\xc0\xaf") == replaced(2));          // overlong '/'
    CHECK(quoted("\xed\xa0\x80") == replaced(3));      // UTF-16 surrogate
    CHECK(quoted("\xf4\x90\x80\x80") == replaced(4));  // above U+10FFFF
    CHECK(quoted("ok\xff"
                 "ok") == "\"ok" + kReplacement + "ok\"");
}

TEST_CASE("json_text indents by two, keeps members in the order added and ends with a newline") {
    JsonDocument doc{
        {"name", "web"},
        {"bits", uint32_t{256}},
        {"big", uint64_t{18446744073709551615ull}},
        {"ok", true},
        {"schemes", JsonDocument::array({"a", "b"})},
        {"empty", JsonDocument::array()},
        {"nested", JsonDocument{{"k", "v"}}},
    };
    CHECK(json_text(doc) ==
          "{\n"
          "  \"name\": \"web\",\n"
          "  \"bits\": 256,\n"
          "  \"big\": 18446744073709551615,\n"
          "  \"ok\": true,\n"
          "  \"schemes\": [\n"
          "    \"a\",\n"
          "    \"b\"\n"
          "  ],\n"
          "  \"empty\": [],\n"
          "  \"nested\": {\n"
          "    \"k\": \"v\"\n"
          "  }\n"
          "}\n");
}

TEST_CASE("json_text escapes member names too") {
    CHECK(json_text(JsonDocument{{"we\"ird\n", "x"}}) == "{\n  \"we\\\"ird\\n\": \"x\"\n}\n");
}

TEST_CASE("key_json has the documented fields, in order, with their types") {
    keyward::ipc::KeyInfo key;
    key.name = "web";
    key.type = "ec-p256";
    key.bits = 256;
    key.token = "embedded";
    key.spki = {0x30, 0x00};
    key.schemes = {keyward::Scheme::ecdsa_secp256r1_sha256, static_cast<keyward::Scheme>(0x0807)};
    key.attributes = {{"CKA_SENSITIVE", "true"}, {"CKA_LABEL", "bad\xff"}};
    const JsonDocument doc = key_json(key);

    std::vector<std::string> names;
    for (const auto& [name, value] : doc.items()) names.push_back(name);
    CHECK(names == std::vector<std::string>{"name", "type", "bits", "token", "schemes", "spki_sha256", "attributes"});
    CHECK(doc["name"] == "web");
    CHECK(doc["type"] == "ec-p256");
    CHECK(doc["bits"].is_number_unsigned());
    CHECK(doc["bits"] == 256);
    CHECK(doc["token"] == "embedded");
    CHECK(doc["schemes"] == JsonDocument::array({"ecdsa_secp256r1_sha256", "0x0807"}));
    // SHA-256 of the two bytes 30 00 (printf '\x30\x00' | sha256sum).
    CHECK(doc["spki_sha256"] == "e4f60d0aa6d7f3d3b6a6494b1c861b99f649c6f9ec51abaf201b20f297327c95");
    REQUIRE(doc["attributes"].is_array());
    REQUIRE(doc["attributes"].size() == 2);
    CHECK(doc["attributes"][0] == JsonDocument{{"name", "CKA_SENSITIVE"}, {"value", "true"}});
    // A device string that is not UTF-8 still gives a document that parses.
    const auto parsed = JsonDocument::parse(json_text(doc));
    CHECK(parsed["attributes"][1]["value"] == "bad" + kReplacement);
}

TEST_CASE("status_json has the documented fields, in order, with their types") {
    keyward::ipc::StatusResponse st;
    st.server = "keywardd 0.1.0";
    st.uptime_seconds = 7513;
    st.signatures = 18342;
    st.key_count = 3;
    st.tokens = {{"embedded", "pkcs11", "present", "keyward (SoftHSM v2, SoftHSM project)"}};
    st.key_use = {{"web", 18340, 1}};
    const JsonDocument doc = status_json("/run/keyward/agent.sock", st, 1);
    CHECK(json_text(doc) ==
          "{\n"
          "  \"socket\": \"/run/keyward/agent.sock\",\n"
          "  \"server\": \"keywardd 0.1.0\",\n"
          "  \"protocol_version\": 1,\n"
          "  \"uptime_seconds\": 7513,\n"
          "  \"signatures\": 18342,\n"
          "  \"key_count\": 3,\n"
          "  \"tokens\": [\n"
          "    {\n"
          "      \"name\": \"embedded\",\n"
          "      \"kind\": \"pkcs11\",\n"
          "      \"state\": \"present\",\n"
          "      \"description\": \"keyward (SoftHSM v2, SoftHSM project)\"\n"
          "    }\n"
          "  ],\n"
          "  \"key_use\": [\n"
          "    {\n"
          "      \"key\": \"web\",\n"
          "      \"signatures\": 18340,\n"
          "      \"failed\": 1\n"
          "    }\n"
          "  ]\n"
          "}\n");
    CHECK(json_text(status_json("s", {}, 1)).find("\"tokens\": []") != std::string::npos);
    CHECK(json_text(status_json("s", {}, 1)).find("\"key_use\": []") != std::string::npos);
}
