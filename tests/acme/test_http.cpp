// URLs, response headers and Retry-After: every input gives a result or a clear error.
// (The HTTP framing itself is libcurl's; the ACME transport is tested against pebble and
// the scripted fake CA in test_faults.py.)
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "agent/lifecycle/acme/http_message.hpp"
#include "agent/lifecycle/acme/https_client.hpp"

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
    for (const char* bad :
         {"http://127.0.0.1/dir", "127.0.0.1/dir", "https://", "https://:443/", "https://h:0/", "https://h:65536/",
          "https://h:12a/", "https://user@h/", "https://[::1/", "https://h/a b", "https://h/\r\nX: y", "ftp://h/"}) {
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

namespace {

// A TCP listener on loopback that accepts (through its backlog) and never speaks.
struct SilentServer {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    uint16_t port = 0;
    SilentServer() {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        listen(fd, 8);
        socklen_t len = sizeof a;
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
    }
    ~SilentServer() { close(fd); }
    std::string url() const { return "https://127.0.0.1:" + std::to_string(port) + "/dir"; }
};

}  // namespace

TEST_CASE("HTTPS requests end at their deadline", "[acme][https]") {
    SilentServer silent;
    HttpsClient client(HttpsOptions{});
    HttpRequest req;
    req.url = silent.url();
    const auto started = std::chrono::steady_clock::now();
    auto r = client.request(req, std::chrono::milliseconds(500));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code == keyward::ErrorCode::timeout);
    CHECK(r.status().message.find("timed out") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(3));
}

TEST_CASE("IPv6 literals are reached", "[acme][https]") {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(fd, 8) == 0);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    const std::string where = "[::1]:" + std::to_string(ntohs(a.sin6_port));
    HttpsClient client(HttpsOptions{});
    HttpRequest req;
    req.url = "https://" + where + "/dir";
    // The TCP connection is made (the listener's backlog takes it); the TLS handshake then
    // waits for a server that never speaks.
    auto r = client.request(req, std::chrono::milliseconds(500));
    close(fd);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code == keyward::ErrorCode::timeout);
    CHECK(r.status().message.find("request to " + where + " timed out") == 0);
    CHECK(client.connections_opened() == 1);
}

TEST_CASE("a raised cancel flag aborts a request in flight", "[acme][https]") {
    SilentServer silent;
    keyward::lifecycle::CancelFlag cancel{false};
    HttpsOptions options;
    options.cancel = &cancel;
    HttpsClient client(options);
    HttpRequest req;
    req.url = silent.url();
    std::thread raiser([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        cancel = true;
    });
    const auto started = std::chrono::steady_clock::now();
    auto r = client.request(req, std::chrono::seconds(30));
    raiser.join();
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message == "interrupted: the agent is stopping");
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
}

TEST_CASE("transport errors say what failed and where", "[acme][https]") {
    uint16_t closed_port = 0;
    {
        SilentServer s;  // a port that was just free: nothing listens once it is closed
        closed_port = s.port;
    }
    HttpRequest req;
    req.url = "https://127.0.0.1:" + std::to_string(closed_port) + "/dir";
    HttpsClient direct(HttpsOptions{});
    auto refused = direct.request(req, std::chrono::seconds(5));
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.status().code == keyward::ErrorCode::connection_lost);
    CHECK(refused.status().message.find("cannot connect to 127.0.0.1:" + std::to_string(closed_port)) == 0);

    HttpsOptions via;
    via.proxy = "http://127.0.0.1:" + std::to_string(closed_port);
    HttpsClient proxied(via);
    req.url = "https://127.0.0.1:9/dir";
    auto down = proxied.request(req, std::chrono::seconds(5));
    REQUIRE_FALSE(down.ok());
    CHECK(down.status().code == keyward::ErrorCode::connection_lost);
    CHECK(down.status().message.find("through the proxy " + *via.proxy) != std::string::npos);

    HttpsOptions bad_ca;
    bad_ca.ca_file = "/nonexistent/ca.pem";
    SilentServer silent;
    req.url = silent.url();
    HttpsClient untrusting(bad_ca);
    auto unreadable = untrusting.request(req, std::chrono::seconds(1));
    REQUIRE_FALSE(unreadable.ok());
    CHECK(unreadable.status().code == keyward::ErrorCode::invalid_argument);  // misconfigured, not transient
    CHECK(unreadable.status().message.find("ca_file /nonexistent/ca.pem: cannot load") == 0);
    CHECK_FALSE(direct.request(HttpRequest{"GET", "http://127.0.0.1/dir", {}, {}}, std::chrono::seconds(1)).ok());
}
