// HTTP/1.1 response parsing, URLs and Retry-After: every input gives a result or a clear error.
#include <catch2/catch.hpp>

#include "agent/lifecycle/acme/http_message.hpp"

using namespace keyward::acme;
using State = HttpParse::State;

TEST_CASE("parse_url accepts https URLs and splits host, port, target", "[acme][http]") {
    auto u = parse_url("https://127.0.0.1:14000/dir");
    REQUIRE(u.ok());
    CHECK(u->host == "127.0.0.1");
    CHECK(u->port == 14000);
    CHECK(u->target == "/dir");
    CHECK(u->host_is_ip);
    CHECK(u->authority() == "127.0.0.1:14000");
    auto v = parse_url("HTTPS://Acme.Example.COM");
    REQUIRE(v.ok());
    CHECK(v->host == "acme.example.com");
    CHECK(v->port == 443);
    CHECK(v->target == "/");
    CHECK_FALSE(v->host_is_ip);
    auto w = parse_url("https://[::1]:8443/a/b?c=d#frag");
    REQUIRE(w.ok());
    CHECK(w->host == "::1");
    CHECK(w->host_is_ip);
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
}

TEST_CASE("a Content-Length response parses once complete, not before", "[acme][http]") {
    std::string full = "HTTP/1.1 201 Created\r\nLocation: https://x/acct/1\r\nReplay-Nonce: abc\r\n"
                       "Content-Length: 5\r\n\r\nhello";
    for (size_t cut = 0; cut < full.size(); ++cut) {
        INFO(cut);
        CHECK(parse_http_response(full.substr(0, cut), false).state == State::incomplete);
        HttpParse truncated = parse_http_response(full.substr(0, cut), true);
        CHECK(truncated.state == State::error);
        CHECK_FALSE(truncated.error.empty());
    }
    HttpParse p = parse_http_response(full, false);
    REQUIRE(p.state == State::complete);
    CHECK(p.response.status == 201);
    CHECK(p.response.body == "hello");
    CHECK(p.response.header("LOCATION") == std::optional<std::string>("https://x/acct/1"));
    CHECK(p.response.header("replay-nonce") == std::optional<std::string>("abc"));
    CHECK_FALSE(p.response.header("retry-after"));
}

TEST_CASE("chunked bodies are decoded, with extensions and trailers", "[acme][http]") {
    std::string full = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n";
    HttpParse p = parse_http_response(full, false);
    REQUIRE(p.state == State::complete);
    CHECK(p.response.body == "hello, world");
    for (size_t cut = 0; cut < full.size(); ++cut) {
        INFO(cut);
        CHECK(parse_http_response(full.substr(0, cut), false).state == State::incomplete);
        CHECK(parse_http_response(full.substr(0, cut), true).state == State::error);
    }
}

TEST_CASE("garbage chunked framing is an error", "[acme][http]") {
    const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (const char* body : {"zz\r\nhello\r\n0\r\n\r\n", "5\r\nhelloXX0\r\n\r\n", "-1\r\n\r\n", "123456789\r\n",
                             "\r\n"}) {
        INFO(body);
        CHECK(parse_http_response(head + body, true).state == State::error);
    }
    CHECK(parse_http_response(head + std::string(2000, '1'), false).state == State::error);
    CHECK(parse_http_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx", true).state == State::error);
}

TEST_CASE("bodies without length run to the end of the connection", "[acme][http]") {
    std::string r = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nsome text";
    CHECK(parse_http_response(r, false).state == State::incomplete);
    HttpParse p = parse_http_response(r, true);
    REQUIRE(p.state == State::complete);
    CHECK(p.response.body == "some text");
}

TEST_CASE("interim 1xx responses are skipped; 204 has no body", "[acme][http]") {
    HttpParse p = parse_http_response("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nReplay-Nonce: n1\r\n\r\n", false);
    REQUIRE(p.state == State::complete);
    CHECK(p.response.status == 204);
    CHECK(p.response.header("replay-nonce") == std::optional<std::string>("n1"));
}

TEST_CASE("malformed status lines and headers are errors", "[acme][http]") {
    for (const char* bad : {"garbage\r\n\r\n", "HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n",
                            "HTTP/1.1 200OK\r\n\r\n", "HTTP/1.1 099 Odd\r\n\r\n",
                            "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "HTTP/1.1 200 OK\r\n: empty\r\n\r\n",
                            "HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
                            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
                            "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\r\n\r\n"}) {
        INFO(bad);
        HttpParse p = parse_http_response(bad, true);
        CHECK(p.state == State::error);
        CHECK_FALSE(p.error.empty());
    }
    CHECK(parse_http_response("", true).error == "empty response (connection closed)");
}

TEST_CASE("oversized headers and bodies are refused early", "[acme][http]") {
    HttpLimits limits;
    limits.max_header_bytes = 1024;
    limits.max_body_bytes = 100;
    std::string big_header = "HTTP/1.1 200 OK\r\nX: " + std::string(2000, 'a');
    CHECK(parse_http_response(big_header, false, limits).state == State::error);  // before the end arrives
    CHECK(parse_http_response("HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n", false, limits).state == State::error);
    CHECK(parse_http_response("HTTP/1.1 200 OK\r\n\r\n" + std::string(101, 'x'), false, limits).state == State::error);
    CHECK(parse_http_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n", false, limits).state ==
          State::error);
    std::string many = "HTTP/1.1 200 OK\r\n";
    for (int i = 0; i < 300; ++i) many += "X: y\r\n";
    CHECK(parse_http_response(many + "\r\n", true).state == State::error);
    CHECK(parse_http_response("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999\r\n\r\n", false).state == State::error);
}

TEST_CASE("Link headers give targets by relation", "[acme][http]") {
    HttpParse p = parse_http_response(
        "HTTP/1.1 200 OK\r\nLink: <https://x/dir>;rel=\"index\", <https://x/alt/1>; rel=\"alternate\"\r\n"
        "Link: <https://x/alt/2>;rel=alternate\r\nContent-Length: 0\r\n\r\n",
        false);
    REQUIRE(p.state == State::complete);
    CHECK(p.response.links("index") == std::vector<std::string>{"https://x/dir"});
    CHECK(p.response.links("alternate") == std::vector<std::string>{"https://x/alt/1", "https://x/alt/2"});
    CHECK(p.response.links("up").empty());
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
