// The CLI's JSON writer: escaping and structure.
#include <catch2/catch.hpp>

#include "cli/json.hpp"

using keyward::cli::json_quote;
using keyward::cli::JsonWriter;

TEST_CASE("json_quote escapes quotes, backslashes and control characters") {
    CHECK(json_quote("plain") == "\"plain\"");
    CHECK(json_quote("a\"b") == "\"a\\\"b\"");
    CHECK(json_quote("a\\b") == "\"a\\\\b\"");
    CHECK(json_quote("l1\nl2\r\t") == "\"l1\\nl2\\r\\t\"");
    CHECK(json_quote("\b\f") == "\"\\b\\f\"");
    CHECK(json_quote(std::string_view("\0\x01\x1f", 3)) == "\"\\u0000\\u0001\\u001f\"");
    CHECK(json_quote("/") == "\"/\"");
    CHECK(json_quote("\x7f") == "\"\x7f\"");
}

TEST_CASE("json_quote keeps valid UTF-8 and replaces invalid bytes") {
    CHECK(json_quote("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91") == "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91\"");
    CHECK(json_quote("\xff") == "\"\\ufffd\"");
    CHECK(json_quote("\xc3") == "\"\\ufffd\"");                 // truncated sequence
    CHECK(json_quote("\xc0\xaf") == "\"\\ufffd\\ufffd\"");      // overlong '/'
    CHECK(json_quote("\xed\xa0\x80") == "\"\\ufffd\\ufffd\\ufffd\"");  // UTF-16 surrogate
    CHECK(json_quote("\xf4\x90\x80\x80") == "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // above U+10FFFF
}

TEST_CASE("JsonWriter nests objects and arrays with commas in the right places") {
    JsonWriter json;
    json.begin_object()
        .member("name", "web")
        .member("bits", uint32_t{256})
        .member("big", uint64_t{18446744073709551615ull})
        .member("ok", true);
    json.key("schemes").begin_array().value("a").value("b").end_array();
    json.key("empty").begin_array().end_array();
    json.key("nested").begin_object().member("k", "v").end_object();
    json.end_object();
    CHECK(json.str() ==
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

TEST_CASE("JsonWriter escapes member names too") {
    JsonWriter json;
    json.begin_object().member("we\"ird\n", "x").end_object();
    CHECK(json.str() == "{\n  \"we\\\"ird\\n\": \"x\"\n}\n");
}

TEST_CASE("JsonWriter writes a top-level array of objects") {
    JsonWriter json;
    json.begin_array();
    json.begin_object().member("n", uint64_t{1}).end_object();
    json.begin_object().end_object();
    json.end_array();
    CHECK(json.str() == "[\n  {\n    \"n\": 1\n  },\n  {}\n]\n");
}
