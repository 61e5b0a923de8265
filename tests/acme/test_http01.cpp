// The http-01 responder: exact answers, 404 for anything else, real loopback fetches, and
// validators served side by side (a stalled client does not hold the others up).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

#include "agent/lifecycle/acme/http01_server.hpp"

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

int connect_to(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

std::string fetch(uint16_t port, const std::string& request) {
    int fd = connect_to(port);
    if (fd < 0) return "connect failed";
    send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
    close(fd);
    return out;
}

struct Answer {
    int status = 0;
    std::string body;
};

// The responder always answers "HTTP/1.1 NNN reason", headers, Content-Length, close.
Answer parse(const std::string& raw) {
    Answer a;
    if (raw.rfind("HTTP/1.1 ", 0) == 0 && raw.size() >= 12) a.status = std::stoi(raw.substr(9, 3));
    if (size_t end = raw.find("\r\n\r\n"); end != std::string::npos) a.body = raw.substr(end + 4);
    return a;
}

}  // namespace

TEST_CASE("http-01 responder answers known tokens only", "[acme][http01]") {
    uint16_t port = free_port();
    auto server = Http01Server::start("127.0.0.1:" + std::to_string(port));
    REQUIRE(server.ok());
    server.value()->add("tok-1", "tok-1.thumb");
    Answer ok = parse(fetch(port, "GET /.well-known/acme-challenge/tok-1 HTTP/1.1\r\nHost: a.example\r\n\r\n"));
    CHECK(ok.status == 200);
    CHECK(ok.body == "tok-1.thumb");
    CHECK(server.value()->requests_served() == 1);

    CHECK(parse(fetch(port, "GET /.well-known/acme-challenge/other HTTP/1.1\r\n\r\n")).status == 404);
    CHECK(parse(fetch(port, "GET / HTTP/1.1\r\n\r\n")).status == 404);
    CHECK(parse(fetch(port, "POST /.well-known/acme-challenge/tok-1 HTTP/1.1\r\n\r\n")).status == 405);
    CHECK(parse(fetch(port, "garbage\r\n\r\n")).status == 400);
    CHECK(parse(fetch(port, std::string(10000, 'A'))).status == 431);
    server.value()->remove("tok-1");
    CHECK(parse(fetch(port, "GET /.well-known/acme-challenge/tok-1 HTTP/1.1\r\n\r\n")).status == 404);

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

TEST_CASE("http-01 responder answers while another client stalls", "[acme][http01]") {
    using namespace std::chrono;
    uint16_t port = free_port();
    auto server = Http01Server::start("127.0.0.1:" + std::to_string(port));
    REQUIRE(server.ok());
    server.value()->add("tok-2", "tok-2.thumb");

    // One client connects and says nothing, another sends half a request line and stops.
    int silent = connect_to(port);
    REQUIRE(silent >= 0);
    int half = connect_to(port);
    REQUIRE(half >= 0);
    const std::string partial = "GET /.well-known/acme-chall";
    send(half, partial.data(), partial.size(), MSG_NOSIGNAL);
    std::this_thread::sleep_for(milliseconds(200));  // both are accepted and waiting

    const auto started = steady_clock::now();
    Answer a = parse(fetch(port, "GET /.well-known/acme-challenge/tok-2 HTTP/1.1\r\nHost: b.example\r\n\r\n"));
    const auto took = duration_cast<milliseconds>(steady_clock::now() - started);
    CHECK(a.status == 200);
    CHECK(a.body == "tok-2.thumb");
    CHECK(took < milliseconds(1000));  // the per-connection limit is 5 s: not waited for

    // The stalled clients are cut off after the per-connection time, not kept forever.
    char byte;
    timeval tv{10, 0};
    setsockopt(silent, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const auto waiting = steady_clock::now();
    CHECK(recv(silent, &byte, 1, 0) == 0);
    CHECK(steady_clock::now() - waiting < seconds(8));
    close(silent);
    close(half);
}

TEST_CASE("http-01 responder serves many validators at once", "[acme][http01]") {
    uint16_t port = free_port();
    auto server = Http01Server::start("127.0.0.1:" + std::to_string(port));
    REQUIRE(server.ok());
    server.value()->add("tok-3", "tok-3.thumb");
    std::vector<std::thread> clients;
    std::vector<Answer> answers(8);
    for (size_t i = 0; i < answers.size(); ++i)
        clients.emplace_back(
            [&, i] { answers[i] = parse(fetch(port, "GET /.well-known/acme-challenge/tok-3 HTTP/1.1\r\n\r\n")); });
    for (auto& t : clients) t.join();
    for (const Answer& a : answers) {
        CHECK(a.status == 200);
        CHECK(a.body == "tok-3.thumb");
    }
    CHECK(server.value()->requests_served() == answers.size());
}
