#include "agent/metrics_http.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/durable_file.hpp"
#include "core/log.hpp"

namespace keyward::agent::metrics {
namespace {

using Clock = std::chrono::steady_clock;

struct Client {
    UniqueFd fd;
    std::string in;
    std::string out;
    size_t out_off = 0;
    Clock::time_point deadline;
    bool answering = false;
};

std::string response(int code, std::string_view reason, std::string_view content_type, std::string_view body) {
    std::string r = "HTTP/1.1 " + std::to_string(code) + " " + std::string(reason) + "\r\n";
    r += "Content-Type: " + std::string(content_type) + "\r\n";
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    r += "Connection: close\r\n";
    if (code == 405) r += "Allow: GET, HEAD\r\n";
    r += "\r\n";
    r.append(body);
    return r;
}

std::string plain(int code, std::string_view reason, std::string_view text) {
    return response(code, reason, "text/plain; charset=utf-8", std::string(text) + "\n");
}

// The answer to a complete request head (request line and headers).
std::string answer(std::string_view head, const Service::RenderFn& render) {
    const size_t eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    const size_t sp1 = line.find(' ');
    const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
        return plain(400, "Bad Request", "malformed request line");
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (version != "HTTP/1.1" && version != "HTTP/1.0") return plain(400, "Bad Request", "expected HTTP/1.0 or 1.1");
    if (method != "GET" && method != "HEAD") return plain(405, "Method Not Allowed", "only GET /metrics");
    std::string_view path = target.substr(0, target.find('?'));
    if (path != "/metrics") return plain(404, "Not Found", "the metrics are at /metrics");
    std::string r = response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", render());
    if (method == "HEAD") r.resize(r.find("\r\n\r\n") + 4);
    return r;
}

}  // namespace

Result<std::pair<std::string, std::string>> split_listen(const std::string& listen) {
    const std::string expected = "expected HOST:PORT with a numeric address, e.g. \"127.0.0.1:9813\" or \"[::1]:9813\"";
    std::string host, port;
    if (!listen.empty() && listen.front() == '[') {
        size_t close = listen.find(']');
        if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':')
            return Status{ErrorCode::invalid_argument, expected};
        host = listen.substr(1, close - 1);
        port = listen.substr(close + 2);
    } else {
        size_t colon = listen.rfind(':');
        if (colon == std::string::npos || listen.find(':') != colon)
            return Status{ErrorCode::invalid_argument, expected};
        host = listen.substr(0, colon);
        port = listen.substr(colon + 1);
    }
    if (host.empty() || port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(port) > 65535)
        return Status{ErrorCode::invalid_argument, expected};
    addrinfo hints{};
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0)
        return Status{ErrorCode::invalid_argument, expected};
    ::freeaddrinfo(res);
    return std::make_pair(host, port);
}

Result<std::unique_ptr<Service>> Service::start(const ServiceConfig& config, RenderFn render) {
    std::unique_ptr<Service> s(new Service(config, std::move(render)));
    s->wake_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!s->wake_fd_) return Status{ErrorCode::internal, std::string("metrics: eventfd: ") + std::strerror(errno)};
    if (!config.listen.empty()) {
        auto hp = split_listen(config.listen);
        if (!hp.ok()) return Status{ErrorCode::invalid_argument, "metrics_listen: " + hp.status().message};
        addrinfo hints{};
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        if (::getaddrinfo(hp->first.c_str(), hp->second.c_str(), &hints, &res) != 0 || !res)
            return Status{ErrorCode::invalid_argument, "metrics_listen: cannot resolve " + config.listen};
        UniqueFd fd(::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        int one = 1;
        if (fd) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        const bool ok = fd && ::bind(fd.get(), res->ai_addr, res->ai_addrlen) == 0 && ::listen(fd.get(), 64) == 0;
        const int err = errno;
        ::freeaddrinfo(res);
        if (!ok)
            return Status{ErrorCode::internal, "metrics_listen: cannot listen on " + config.listen + ": " +
                                                   std::strerror(err) +
                                                   " (is another process using the port? change agent.metrics_listen)"};
        sockaddr_storage bound{};
        socklen_t len = sizeof bound;
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len);
        s->port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                               : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
        s->listen_fd_ = std::move(fd);
    }
    s->dirty_ = true;  // the first file at once
    Service* raw = s.get();
    s->thread_ = std::thread([raw] { raw->run(); });
    return s;
}

Service::~Service() {
    stopping_ = true;
    poke();
    if (thread_.joinable()) thread_.join();
}

void Service::poke() noexcept {
    dirty_ = true;
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_.get(), &one, sizeof one);
}

void Service::write_file() {
    if (config_.file.empty()) return;
    std::string text;
    try {
        text = render_();
    } catch (const std::exception& e) {
        log::warning(std::string("metrics: cannot render: ") + e.what());
        return;
    }
    if (Status s = files::write_atomic(config_.file, text, 0644); !s.ok())
        log::warning("metrics: cannot write the metrics file: " + s.message);
}

void Service::run() {
    std::vector<Client> clients;
    Clock::time_point next_file = Clock::now();
    // A change often comes in a burst (a renewal touches several values): write at most
    // once a second for changes, and every interval regardless.
    Clock::time_point last_file{};
    while (!stopping_.load()) {
        const auto now = Clock::now();
        if (!config_.file.empty() &&
            (now >= next_file || (dirty_.load() && now - last_file >= std::chrono::seconds(1)))) {
            dirty_ = false;
            write_file();
            last_file = now;
            next_file = now + config_.interval;
        }
        // Expired clients go without an answer: a scraper that cannot send a request
        // head or take an answer in time is not waited for.
        std::erase_if(clients, [&](const Client& c) { return now >= c.deadline; });

        std::vector<pollfd> fds;
        fds.push_back({wake_fd_.get(), POLLIN, 0});
        const bool accepting = listen_fd_ && clients.size() < kMaxClients;
        fds.push_back({accepting ? listen_fd_.get() : -1, POLLIN, 0});
        for (const auto& c : clients) fds.push_back({c.fd.get(), short(c.answering ? POLLOUT : POLLIN), 0});
        auto wake = next_file;
        if (config_.file.empty()) wake = now + std::chrono::seconds(3600);
        if (dirty_.load() && !config_.file.empty()) wake = std::min(wake, last_file + std::chrono::seconds(1));
        for (const auto& c : clients) wake = std::min(wake, c.deadline);
        const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count();
        const int timeout = int(std::clamp<int64_t>(wait + 1, 0, 60000));
        if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) {
            log::error(std::string("metrics: poll: ") + std::strerror(errno));
            return;
        }
        if (fds[0].revents & POLLIN) {
            uint64_t n;
            [[maybe_unused]] auto r = ::read(wake_fd_.get(), &n, sizeof n);
        }
        for (size_t i = 0; i < clients.size(); ++i) {
            Client& c = clients[i];
            const short rev = fds[i + 2].revents;
            if (!rev) continue;
            if (!c.answering) {
                char buf[2048];
                ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
                if (n <= 0) {
                    if (n == 0 || (errno != EAGAIN && errno != EINTR)) c.deadline = Clock::time_point{};
                    continue;
                }
                c.in.append(buf, size_t(n));
                size_t end = c.in.find("\r\n\r\n");
                if (end == std::string::npos && c.in.size() > kMaxRequestHead) {
                    c.out = plain(431, "Request Header Fields Too Large", "request head over 8 KiB");
                } else if (end != std::string::npos) {
                    try {
                        c.out = answer(std::string_view(c.in).substr(0, end + 2), render_);
                    } catch (const std::exception& e) {
                        c.out = plain(500, "Internal Server Error", "cannot render the metrics");
                        log::warning(std::string("metrics: cannot render: ") + e.what());
                    }
                } else {
                    continue;
                }
                c.answering = true;
                c.in.clear();
                c.deadline = Clock::now() + kAnswerTimeout;
            }
            ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
            if (n > 0) c.out_off += size_t(n);
            if ((n < 0 && errno != EAGAIN && errno != EINTR) || c.out_off == c.out.size())
                c.deadline = Clock::time_point{};  // done (or broken): closed at the next turn
        }
        if (accepting && (fds[1].revents & POLLIN)) {
            while (clients.size() < kMaxClients) {
                UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
                if (!fd) break;
                clients.push_back({std::move(fd), {}, {}, 0, Clock::now() + kRequestTimeout, false});
            }
        }
    }
}

}  // namespace keyward::agent::metrics
