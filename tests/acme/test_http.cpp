// URLs, response headers and Retry-After: every input gives a result or a clear error.
// (The HTTP framing itself is libcurl's; the ACME transport is tested against pebble and
// the scripted fake CA in test_faults.py.)
#include <catch2/catch.hpp>

#include "agent/lifecycle/acme/http_message.hpp"

using namespace keyward::acme;

TEST_CASE("parse_url accepts https URLs and splits host, port, target", "[acme][http]") {
    auto u = parse_url("https://127.0.0.1:14000/dir");
    REQUIRE(u.ok());
    CHECK(u->host == "127.0.0.1");
    CHECK(u->port == 14000);
    CHECK(u->target == "/dir");
    CHECK(u->authority() == "127.0.0.1:14000");
    auto v = parse_url("HTTPS://Acme.Example.COM");
    REQUIRE(v.ok());
    CHECK(v->host == "acme.example.com");
    CHECK(v->port == 443);
    CHECK(v->target == "/");
    CHECK(v->authority() == "acme.example.com:443");
    auto w = parse_url("https://[::1]:8443/a/b?c=d#frag");
    REQUIRE(w.ok());
    CHECK(w->host == "::1");
    CHECK(w->target == "/a/b?c=d");
    CHECK(w->authority() == "[::1]:8443");
}

TEST_CASE("parse_url refuses what it cannot use safely", "[acme][http]") {
    for (const char* bad : {"http://127.0.0.1/dir", "127.0.0.1/dir", "https://", "https://:443/", "https://h:0/",
                            "https://h:65536/", "https://h:12a/", "https://user@h/", "https://[::1/",
                            "https://h/a b", "https://h/\r\nX: y", "ftp://h/"}) {
        INFO(bad);
        CHECK_FALSE(parse_url(bad).ok());
    }
    CHECK_FALSE(parse_url(std::string(3000, 'a')).ok());
    CHECK(parse_url("http://proxy.example:3128", {"http"})->port == 3128);
    CHECK(parse_url("http://proxy.example", {"http"})->port == 80);
    CHECK_FALSE(parse_url("https://proxy.example:3128", {"http"}).ok());
}

TEST_CASE("header lines are kept by lower-case name; Link headers give targets by relation", "[acme][http]") {
    HttpResponse r;
    CHECK(r.add_header_line("Replay-Nonce:  abc \r\n"));
    CHECK(r.add_header_line("Link: <https://x/dir>;rel=\"index\", <https://x/alt/1>; rel=\"alternate\"\r\n"));
    CHECK(r.add_header_line("LINK: <https://x/alt/2>;rel=alternate\r\n"));
    CHECK_FALSE(r.add_header_line("no colon here\r\n"));
    CHECK_FALSE(r.add_header_line(": empty\r\n"));
    CHECK_FALSE(r.add_header_line("Bad Name: x\r\n"));
    CHECK(r.header("replay-NONCE") == std::optional<std::string>("abc"));
    CHECK_FALSE(r.header("retry-after"));
    CHECK(r.links("index") == std::vector<std::string>{"https://x/dir"});
    CHECK(r.links("alternate") == std::vector<std::string>{"https://x/alt/1", "https://x/alt/2"});
    CHECK(r.links("up").empty());
}

TEST_CASE("Retry-After as seconds or HTTP-date, clamped", "[acme][http]") {
    auto now = std::chrono::system_clock::from_time_t(1700000000);  // Tue, 14 Nov 2023 22:13:20 GMT
    CHECK(parse_retry_after("120", now) == std::chrono::seconds(120));
    CHECK(parse_retry_after(" 0 ", now) == std::chrono::seconds(0));
    CHECK(parse_retry_after("99999999999999", now) == std::chrono::seconds(86400));
    CHECK(parse_retry_after("Tue, 14 Nov 2023 22:14:20 GMT", now) == std::chrono::seconds(60));
    CHECK(parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now) == std::chrono::seconds(0));
    CHECK_FALSE(parse_retry_after("soon", now));
    CHECK_FALSE(parse_retry_after("", now));
    CHECK_FALSE(parse_retry_after("-5", now));
    CHECK_FALSE(parse_retry_after("Tue, 14 Nov 2023 22:14:20 GMT trailing", now));
}
