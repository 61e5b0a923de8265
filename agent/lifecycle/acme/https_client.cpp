#include "agent/lifecycle/acme/https_client.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace keyward::acme {

namespace {

using Clock = std::chrono::steady_clock;

struct CtxFree { void operator()(SSL_CTX* p) const { SSL_CTX_free(p); } };
struct SslFree { void operator()(SSL* p) const { SSL_free(p); } };
struct AddrFree { void operator()(addrinfo* p) const { freeaddrinfo(p); } };

class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() { if (fd_ >= 0) ::close(fd_); }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    int release() { int fd = fd_; fd_ = -1; return fd; }
private:
    int fd_;
};

// OpenSSL writes to the socket with write(2): a peer that closed early would raise SIGPIPE
// in whatever process hosts this code. Block it on this thread for the exchange and
// swallow one raised meanwhile (keywardd ignores SIGPIPE anyway; a CLI may not).
class SigpipeGuard {
public:
    SigpipeGuard() {
        sigset_t pipe_only;
        sigemptyset(&pipe_only);
        sigaddset(&pipe_only, SIGPIPE);
        sigset_t pending;
        sigpending(&pending);
        was_pending_ = sigismember(&pending, SIGPIPE) == 1;
        pthread_sigmask(SIG_BLOCK, &pipe_only, &old_);
    }
    ~SigpipeGuard() {
        if (!was_pending_) {
            sigset_t pipe_only;
            sigemptyset(&pipe_only);
            sigaddset(&pipe_only, SIGPIPE);
            timespec zero{0, 0};
            while (sigtimedwait(&pipe_only, nullptr, &zero) == SIGPIPE) {
            }
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    SigpipeGuard(const SigpipeGuard&) = delete;
    SigpipeGuard& operator=(const SigpipeGuard&) = delete;

private:
    sigset_t old_;
    bool was_pending_ = false;
};

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

std::string ssl_error_text() {
    unsigned long e = ERR_get_error();
    std::string text;
    if (e != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        text = buf;
    }
    ERR_clear_error();
    return text;
}

// Waits until the socket is ready for what OpenSSL asked for, or the deadline passes.
bool wait_io(int fd, bool for_write, Clock::time_point deadline) {
    pollfd p{fd, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
    for (;;) {
        int ms = remaining_ms(deadline);
        if (ms == 0) return false;
        int r = ::poll(&p, 1, ms);
        if (r > 0) return true;
        if (r == 0) return false;
        if (errno != EINTR) return false;
    }
}

Result<int> connect_tcp(const Url& url, Clock::time_point deadline) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    std::string port = std::to_string(url.port);
    int gai = getaddrinfo(url.host.c_str(), port.c_str(), &hints, &res);
    if (gai != 0)
        return Status{ErrorCode::connection_lost, "cannot resolve " + url.host + ": " + gai_strerror(gai)};
    std::unique_ptr<addrinfo, AddrFree> list(res);
    std::string last = "no address";
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
        Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
        if (fd.get() < 0) { last = std::strerror(errno); continue; }
        int r = ::connect(fd.get(), ai->ai_addr, ai->ai_addrlen);
        if (r != 0 && errno != EINPROGRESS) { last = std::strerror(errno); continue; }
        if (r != 0) {
            if (!wait_io(fd.get(), true, deadline)) return Status{ErrorCode::timeout, "connecting to " + url.authority() + " timed out"};
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) { last = std::strerror(err); continue; }
        }
        return fd.release();
    }
    return Status{ErrorCode::connection_lost, "cannot connect to " + url.authority() + ": " + last};
}

}  // namespace

Result<HttpResponse> https_request(const HttpRequest& request, const HttpsOptions& options) {
    Result<Url> parsed = parse_url(request.url);
    if (!parsed.ok()) return parsed.status();
    const Url& url = parsed.value();
    Clock::time_point deadline = Clock::now() + options.timeout;
    SigpipeGuard no_sigpipe;

    std::unique_ptr<SSL_CTX, CtxFree> ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) return Status{ErrorCode::internal, "TLS context: " + ssl_error_text()};
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (!options.ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(ctx.get(), options.ca_file.c_str(), nullptr) != 1)
            return Status{ErrorCode::invalid_argument, "ca_file " + options.ca_file + ": cannot load (" + ssl_error_text() + ")"};
    } else if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
        return Status{ErrorCode::invalid_argument, "cannot load the system trust store: " + ssl_error_text()};
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);

    Result<int> sock = connect_tcp(url, deadline);
    if (!sock.ok()) return sock.status();
    Fd fd(sock.value());

    std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
    if (!ssl || SSL_set_fd(ssl.get(), fd.get()) != 1) return Status{ErrorCode::internal, "TLS session: " + ssl_error_text()};
    if (url.host_is_ip) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), url.host.c_str()) != 1)
            return Status{ErrorCode::internal, "TLS: cannot set the expected IP address"};
    } else {
        SSL_set_tlsext_host_name(ssl.get(), url.host.c_str());
        if (SSL_set1_host(ssl.get(), url.host.c_str()) != 1)
            return Status{ErrorCode::internal, "TLS: cannot set the expected host name"};
    }

    // Drives one non-blocking OpenSSL call to completion under the deadline.
    auto drive = [&](auto&& op, const char* what) -> Result<int> {
        for (;;) {
            ERR_clear_error();
            int r = op();
            if (r > 0) return r;
            int e = SSL_get_error(ssl.get(), r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                if (!wait_io(fd.get(), e == SSL_ERROR_WANT_WRITE, deadline))
                    return Status{ErrorCode::timeout, std::string(what) + " " + url.authority() + " timed out"};
                continue;
            }
            if (e == SSL_ERROR_ZERO_RETURN) return 0;
            return Status{ErrorCode::connection_lost, ""};
        }
    };

    Result<int> hs = drive([&] { return SSL_connect(ssl.get()); }, "TLS handshake with");
    if (!hs.ok() || hs.value() <= 0) {
        long verify = SSL_get_verify_result(ssl.get());
        if (verify != X509_V_OK)
            return Status{ErrorCode::invalid_argument, "the server " + url.authority() + " is not trusted (" +
                                                           X509_verify_cert_error_string(verify) +
                                                           "); check ca_file"};
        if (!hs.ok() && hs.status().code == ErrorCode::timeout) return hs.status();
        std::string detail = ssl_error_text();
        return Status{ErrorCode::connection_lost, "TLS handshake with " + url.authority() + " failed" +
                                                      (detail.empty() ? "" : ": " + detail)};
    }

    std::string wire = request.method + " " + url.target + " HTTP/1.1\r\nHost: " + url.authority() +
                       "\r\nUser-Agent: " + options.user_agent + "\r\nConnection: close\r\n";
    for (const auto& [k, v] : request.headers) wire += k + ": " + v + "\r\n";
    if (!request.body.empty() || request.method == "POST")
        wire += "Content-Length: " + std::to_string(request.body.size()) + "\r\n";
    wire += "\r\n";
    wire += request.body;
    size_t sent = 0;
    while (sent < wire.size()) {
        Result<int> w = drive([&] { return SSL_write(ssl.get(), wire.data() + sent, static_cast<int>(wire.size() - sent)); },
                              "sending to");
        if (!w.ok()) return w.status().code == ErrorCode::timeout ? w.status()
                                                                  : Status{ErrorCode::connection_lost, "connection to " + url.authority() + " lost while sending"};
        if (w.value() <= 0) return Status{ErrorCode::connection_lost, "connection to " + url.authority() + " closed while sending"};
        sent += static_cast<size_t>(w.value());
    }

    std::string received;
    const size_t cap = options.limits.max_header_bytes + options.limits.max_body_bytes + 64 * 1024;
    char buf[16384];
    bool eof = false;
    for (;;) {
        HttpParse p = parse_http_response(received, eof, options.limits);
        if (p.state == HttpParse::State::complete) return std::move(p.response);
        if (p.state == HttpParse::State::error)
            return Status{ErrorCode::protocol_error, "bad HTTP response from " + url.authority() + ": " + p.error};
        if (eof) return Status{ErrorCode::protocol_error, "bad HTTP response from " + url.authority()};
        Result<int> r = drive([&] { return SSL_read(ssl.get(), buf, sizeof buf); }, "waiting for an answer from");
        if (!r.ok()) {
            if (r.status().code == ErrorCode::timeout) return r.status();
            eof = true;  // reset or unexpected close: let the parser judge what arrived
            continue;
        }
        if (r.value() == 0) { eof = true; continue; }
        received.append(buf, static_cast<size_t>(r.value()));
        if (received.size() > cap)
            return Status{ErrorCode::protocol_error, "response from " + url.authority() + " is too large"};
    }
}

}  // namespace keyward::acme
