// The http-01 responder: exact answers, 404 for anything else, a real loopback fetch.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/lifecycle/acme/http01_server.hpp"
#include "agent/lifecycle/acme/http_message.hpp"

using namespace keyward::acme;

namespace {

uint16_t free_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    close(fd);
    return ntohs(a.sin_port);
}

std::string fetch(uint16_t port, const std::string& request) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(fd);
        return "connect failed";
    }
    send(fd, request.data(), request.size(), 0);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
    close(fd);
    return out;
}

}  // namespace

TEST_CASE("http-01 responder answers known tokens only", "[acme][http01]") {
    uint16_t port = free_port();
    auto server = Http01Server::start("127.0.0.1:" + std::to_string(port));
    REQUIRE(server.ok());
    server.value()->add("tok-1", "tok-1.thumb");
    HttpParse ok = parse_http_response(
        fetch(port, "GET /.well-known/acme-challenge/tok-1 HTTP/1.1\r\nHost: a.example\r\n\r\n"), true);
    REQUIRE(ok.state == HttpParse::State::complete);
    CHECK(ok.response.status == 200);
    CHECK(ok.response.body == "tok-1.thumb");
    CHECK(server.value()->requests_served() == 1);

    CHECK(parse_http_response(fetch(port, "GET /.well-known/acme-challenge/other HTTP/1.1\r\n\r\n"), true).response.status == 404);
    CHECK(parse_http_response(fetch(port, "GET / HTTP/1.1\r\n\r\n"), true).response.status == 404);
    CHECK(parse_http_response(fetch(port, "POST /.well-known/acme-challenge/tok-1 HTTP/1.1\r\n\r\n"), true).response.status == 405);
    CHECK(parse_http_response(fetch(port, "garbage\r\n\r\n"), true).response.status == 400);
    CHECK(parse_http_response(fetch(port, std::string(10000, 'A')), true).response.status == 431);
    server.value()->remove("tok-1");
    CHECK(parse_http_response(fetch(port, "GET /.well-known/acme-challenge/tok-1 HTTP/1.1\r\n\r\n"), true).response.status == 404);

    // A busy port is a clear configuration error.
    auto second = Http01Server::start("127.0.0.1:" + std::to_string(port));
    REQUIRE_FALSE(second.ok());
    CHECK(second.status().message.find("cannot listen") != std::string::npos);
    server.value().reset();
    CHECK(fetch(port, "GET / HTTP/1.1\r\n\r\n") == "connect failed");
}

TEST_CASE("http-01 listen addresses", "[acme][http01]") {
    std::string host;
    uint16_t port = 0;
    CHECK(split_host_port("127.0.0.1:80", host, port));
    CHECK(host == "127.0.0.1");
    CHECK(port == 80);
    CHECK(split_host_port("[::1]:5002", host, port));
    CHECK(host == "::1");
    CHECK_FALSE(split_host_port("::1:80", host, port));
    CHECK_FALSE(Http01Server::start("localhost:80").ok());  // numeric only
}
