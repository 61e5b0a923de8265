#include "agent/lifecycle/acme/http01_server.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <charconv>
#include <cstring>
#include <vector>

#include "core/unique_fd.hpp"

namespace keyward::acme {

namespace {
using Clock = std::chrono::steady_clock;
constexpr std::string_view kPrefix = "/.well-known/acme-challenge/";
constexpr size_t kMaxRequest = 8192;
// Validators send one small request at once; anything slower is cut off.
constexpr std::chrono::milliseconds kClientTimeout{5000};
constexpr size_t kMaxConnections = 32;

std::string answer(int status, std::string_view reason, std::string_view body) {
    return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
           "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nConnection: close\r\n\r\n" + std::string(body);
}
}  // namespace

bool split_host_port(const std::string& text, std::string& host, uint16_t& port) {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) return false;
    host = text.substr(0, colon);
    if (host.front() == '[') {
        if (host.back() != ']' || host.size() < 3) return false;
        host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string::npos) {
        return false;
    }
    std::string_view p(text.data() + colon + 1, text.size() - colon - 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
    if (ec != std::errc() || end != p.data() + p.size() || value == 0 || value > 65535) return false;
    port = static_cast<uint16_t>(value);
    return true;
}

Result<std::unique_ptr<Http01Server>> Http01Server::start(const std::string& listen) {
    std::string host;
    uint16_t port = 0;
    if (!split_host_port(listen, host, port))
        return Status{ErrorCode::invalid_argument, "http01_listen \"" + listen + "\": expected host:port"};
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    addrinfo* res = nullptr;
    std::string port_text = std::to_string(port);
    if (getaddrinfo(host.c_str(), port_text.c_str(), &hints, &res) != 0 || res == nullptr)
        return Status{ErrorCode::invalid_argument, "http01_listen \"" + listen + "\": host must be a numeric address"};
    int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        return Status{ErrorCode::internal, std::string("socket: ") + std::strerror(errno)};
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = ::bind(fd, res->ai_addr, res->ai_addrlen);
    int err = errno;
    freeaddrinfo(res);
    if (rc != 0 || ::listen(fd, 16) != 0) {
        if (rc == 0) err = errno;
        ::close(fd);
        return Status{ErrorCode::invalid_argument,
                      "http01_listen " + listen + ": cannot listen (" + std::strerror(err) + ")"};
    }
    int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake < 0) {
        ::close(fd);
        return Status{ErrorCode::internal, std::string("eventfd: ") + std::strerror(errno)};
    }
    std::unique_ptr<Http01Server> server(new Http01Server(fd, wake));
    server->thread_ = std::thread([s = server.get()] { s->run(); });
    return server;
}

Http01Server::Http01Server(int listen_fd, int wake_fd) : listen_fd_(listen_fd), wake_fd_(wake_fd) {}

Http01Server::~Http01Server() {
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
    (void)ignored;
    if (thread_.joinable()) thread_.join();
    ::close(listen_fd_);
    ::close(wake_fd_);
}

void Http01Server::add(const std::string& token, const std::string& key_authorization) {
    std::lock_guard lock(mutex_);
    tokens_[token] = key_authorization;
}

void Http01Server::remove(const std::string& token) {
    std::lock_guard lock(mutex_);
    tokens_.erase(token);
}

unsigned Http01Server::requests_served() const {
    std::lock_guard lock(mutex_);
    return served_;
}

std::string Http01Server::respond(std::string_view request) {
    size_t eol = request.find("\r\n");
    std::string_view line = request.substr(0, eol);
    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || line.substr(sp2 + 1, 7) != "HTTP/1.")
        return answer(400, "Bad Request", "bad request\n");
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    if (method != "GET" && method != "HEAD") return answer(405, "Method Not Allowed", "GET only\n");
    if (target.rfind(kPrefix, 0) != 0) return answer(404, "Not Found", "not found\n");
    std::string token(target.substr(kPrefix.size()));
    std::lock_guard lock(mutex_);
    auto it = tokens_.find(token);
    if (it == tokens_.end()) return answer(404, "Not Found", "unknown token\n");
    ++served_;
    std::string out = answer(200, "OK", it->second);
    if (method == "HEAD") out.resize(out.size() - it->second.size());
    return out;
}

namespace {

// One validator connection: what it sent so far, the answer once the request is complete.
struct Connection {
    UniqueFd fd;
    Clock::time_point deadline;
    std::string request;
    std::string reply;
    size_t sent = 0;
};

// Reads what the client has sent and writes what it can of the answer, without blocking;
// false when the connection is finished (answered, closed or broken).
bool advance(Connection& c, Http01Server& server) {
    if (c.reply.empty()) {
        char buf[2048];
        for (;;) {
            ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
            if (n <= 0) return false;
            c.request.append(buf, static_cast<size_t>(n));
            if (c.request.size() > kMaxRequest) {
                c.reply = answer(431, "Request Header Fields Too Large", "too large\n");
                break;
            }
            if (c.request.find("\r\n\r\n") != std::string::npos) {
                c.reply = server.respond(c.request);
                break;
            }
        }
    }
    while (c.sent < c.reply.size()) {
        ssize_t n = ::send(c.fd.get(), c.reply.data() + c.sent, c.reply.size() - c.sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        if (n <= 0) return false;
        c.sent += static_cast<size_t>(n);
    }
    return false;
}

}  // namespace

// One thread multiplexes every connection: a client that connects and stalls holds one of
// kMaxConnections slots for at most kClientTimeout and never delays the others.
void Http01Server::run() {
    std::vector<Connection> connections;
    std::vector<pollfd> fds;
    for (;;) {
        const Clock::time_point now = Clock::now();
        fds.clear();
        fds.push_back({wake_fd_, POLLIN, 0});
        fds.push_back({listen_fd_, static_cast<short>(connections.size() < kMaxConnections ? POLLIN : 0), 0});
        int wait_ms = -1;
        for (const Connection& c : connections) {
            fds.push_back({c.fd.get(), static_cast<short>(c.reply.empty() ? POLLIN : POLLOUT), 0});
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(c.deadline - now).count();
            int ms = static_cast<int>(std::clamp<long long>(left, 0, kClientTimeout.count()));
            if (wait_ms < 0 || ms < wait_ms) wait_ms = ms;
        }
        int r = ::poll(fds.data(), fds.size(), wait_ms);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 || (fds[0].revents & POLLIN)) return;
        const Clock::time_point after = Clock::now();
        for (size_t i = connections.size(); i-- > 0;) {
            Connection& c = connections[i];
            bool keep = after < c.deadline;
            if (keep && fds[i + 2].revents != 0) keep = advance(c, *this);
            if (!keep) connections.erase(connections.begin() + static_cast<std::ptrdiff_t>(i));
        }
        if (!(fds[1].revents & POLLIN)) continue;
        while (connections.size() < kMaxConnections) {
            int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (client < 0) break;
            connections.push_back({UniqueFd(client), after + kClientTimeout, {}, {}, 0});
        }
    }
}

}  // namespace keyward::acme
