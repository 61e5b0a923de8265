// Concurrency and fork behaviour of the keyward provider inside one process.
//
//   tls_stress threads CA CERT KEY SERVER_CERT SERVER_KEY [THREADS] [ROUNDS]
//   tls_stress fork    CA CERT KEY SERVER_CERT SERVER_KEY [CHILDREN] [ROUNDS]
//
// The providers come from OPENSSL_CONF (the test points it at keyward + default); KEY is
// a key-reference file or a keyward:NAME URI. A TLS server runs in this process on
// 127.0.0.1 (a thread per connection, file key, client certificate required) so that
// handshakes, and with them the agent signatures, really overlap.
//
// threads: THREADS client threads released together by a barrier, each doing ROUNDS
//          handshakes over one shared SSL_CTX.
// fork:    the parent handshakes first (so it holds an agent connection), then forks
//          CHILDREN children that each handshake ROUNDS times while the parent keeps
//          going too; the children must reconnect on their own, the parent's connection
//          must survive them.
// Prints a summary line; exit 0 only when every handshake succeeded and the server saw
// our certificate.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <csignal>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <condition_variable>
#include <string>
#include <thread>
#include <vector>

#include "core/ossl.hpp"

namespace {

using keyward::ossl::PKey;
using SslCtxPtr = keyward::ossl::SslCtx;
using SslPtr = keyward::ossl::Ssl;

std::mutex print_mu;

void report_errors(const char* what) {
    std::lock_guard lock(print_mu);
    std::fprintf(stderr, "[%d] %s failed:\n", static_cast<int>(getpid()), what);
    ERR_print_errors_fp(stderr);
}

// ---- the in-process server -----------------------------------------------------------

std::string peer_cn(SSL* ssl) {
    X509* peer = SSL_get0_peer_certificate(ssl);
    if (peer == nullptr) return "(none)";
    char cn[256] = {0};
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
    return cn;
}

void serve_one(SSL_CTX* ctx, int fd) {
    SslPtr ssl(SSL_new(ctx));
    SSL_set_fd(ssl.get(), fd);
    if (SSL_accept(ssl.get()) == 1) {
        char buf[1024];
        SSL_read(ssl.get(), buf, sizeof buf);  // the request; its content does not matter
        std::string page = "HTTP/1.0 200 OK\r\n\r\nSubject: CN=" + peer_cn(ssl.get()) + "\n";
        SSL_write(ssl.get(), page.data(), static_cast<int>(page.size()));
        SSL_shutdown(ssl.get());
    }
    ERR_clear_error();
    ::close(fd);
}

struct Server {
    SslCtxPtr ctx;
    int listen_fd = -1;
    int port = 0;
    std::thread acceptor;
    std::atomic<bool> stop{false};

    bool start(const char* ca, const char* cert, const char* key) {
        ctx.reset(SSL_CTX_new(TLS_server_method()));
        if (!ctx || SSL_CTX_use_certificate_file(ctx.get(), cert, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx.get(), key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_load_verify_locations(ctx.get(), ca, nullptr) != 1) {
            report_errors("server setup");
            return false;
        }
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
        listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (::bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd, 128) != 0 ||
            ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            std::perror("server socket");
            return false;
        }
        port = ntohs(addr.sin_port);
        acceptor = std::thread([this] {
            std::vector<std::thread> workers;
            while (!stop.load()) {
                int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
                if (fd < 0) break;
                workers.emplace_back(serve_one, ctx.get(), fd);
            }
            for (auto& w : workers) w.join();
        });
        return true;
    }

    void shutdown() {
        stop = true;
        ::shutdown(listen_fd, SHUT_RDWR);
        ::close(listen_fd);
        if (acceptor.joinable()) acceptor.join();
    }
};

// ---- the client ----------------------------------------------------------------------

EVP_PKEY* load_key(const char* key) {
    if (std::strncmp(key, "keyward:", 8) != 0) return nullptr;
    OSSL_STORE_CTX* store = OSSL_STORE_open(key, nullptr, nullptr, nullptr, nullptr);
    if (store == nullptr) return nullptr;
    EVP_PKEY* pkey = nullptr;
    while (pkey == nullptr && !OSSL_STORE_eof(store)) {
        OSSL_STORE_INFO* info = OSSL_STORE_load(store);
        if (info == nullptr) break;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY) pkey = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(store);
    return pkey;
}

SslCtxPtr client_ctx(const char* ca, const char* cert, const char* key) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx || SSL_CTX_use_certificate_file(ctx.get(), cert, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_load_verify_locations(ctx.get(), ca, nullptr) != 1) {
        report_errors("client setup");
        return nullptr;
    }
    int ok;
    if (std::strncmp(key, "keyward:", 8) == 0) {
        PKey pkey(load_key(key));
        ok = pkey && SSL_CTX_use_PrivateKey(ctx.get(), pkey.get()) == 1;
    } else {
        ok = SSL_CTX_use_PrivateKey_file(ctx.get(), key, SSL_FILETYPE_PEM) == 1;
    }
    if (!ok) {
        report_errors("loading the client key");
        return nullptr;
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    return ctx;
}

// One handshake + request; true when the server reports our certificate's CN.
bool handshake(SSL_CTX* ctx, int port, const std::string& expect_cn, bool tls12) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        std::perror("connect");
        ::close(fd);
        return false;
    }
    SslPtr ssl(SSL_new(ctx));
    if (tls12) SSL_set_max_proto_version(ssl.get(), TLS1_2_VERSION);
    SSL_set_fd(ssl.get(), fd);
    bool ok = false;
    if (SSL_connect(ssl.get()) == 1) {
        const char req[] = "GET / HTTP/1.0\r\n\r\n";
        SSL_write(ssl.get(), req, sizeof req - 1);
        std::string page;
        char buf[1024];
        int n;
        while ((n = SSL_read(ssl.get(), buf, sizeof buf)) > 0) page.append(buf, static_cast<size_t>(n));
        ok = page.find("Subject: CN=" + expect_cn + "\n") != std::string::npos;
        if (!ok) {
            std::lock_guard lock(print_mu);
            std::fprintf(stderr, "[%d] unexpected answer: %s\n", static_cast<int>(getpid()), page.c_str());
        }
    } else {
        report_errors("SSL_connect");
    }
    ERR_clear_error();
    ::close(fd);
    return ok;
}

std::string cert_cn(const char* path) {
    FILE* f = std::fopen(path, "r");
    if (f == nullptr) return {};
    X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    if (x == nullptr) return {};
    char cn[256] = {0};
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
    X509_free(x);
    return cn;
}

int run_threads(SSL_CTX* ctx, int port, const std::string& cn, int threads, int rounds) {
    std::atomic<int> ok{0}, failed{0};
    std::mutex mu;
    std::condition_variable cv;
    int waiting = 0;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            {
                std::unique_lock lock(mu);
                if (++waiting == threads) cv.notify_all();
                cv.wait(lock, [&] { return waiting == threads; });
            }
            for (int r = 0; r < rounds; ++r) (handshake(ctx, port, cn, (t + r) % 2 == 1) ? ok : failed)++;
        });
    }
    for (auto& th : pool) th.join();
    std::printf("threads=%d rounds=%d ok=%d failed=%d\n", threads, rounds, ok.load(), failed.load());
    return failed.load() == 0 && ok.load() == threads * rounds ? 0 : 1;
}

int run_fork(SSL_CTX* ctx, int port, const std::string& cn, int children, int rounds) {
    if (!handshake(ctx, port, cn, false)) {
        std::printf("parent's first handshake failed\n");
        return 1;
    }
    std::vector<pid_t> pids;
    for (int c = 0; c < children; ++c) {
        pid_t pid = ::fork();
        if (pid < 0) {
            std::perror("fork");
            return 1;
        }
        if (pid == 0) {
            int bad = 0;
            for (int r = 0; r < rounds; ++r) bad += handshake(ctx, port, cn, r % 2 == 1) ? 0 : 1;
            std::fflush(stderr);
            std::_Exit(bad == 0 ? 0 : 1);  // no atexit handlers: the parent owns the shared state
        }
        pids.push_back(pid);
    }
    int parent_bad = 0;
    for (int r = 0; r < rounds; ++r) parent_bad += handshake(ctx, port, cn, r % 2 == 1) ? 0 : 1;
    int children_bad = 0;
    for (pid_t pid : pids) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++children_bad;
    }
    // The parent's connection must have survived its children.
    for (int r = 0; r < rounds; ++r) parent_bad += handshake(ctx, port, cn, false) ? 0 : 1;
    std::printf("children=%d rounds=%d children_failed=%d parent_failed=%d\n", children, rounds, children_bad,
                parent_bad);
    return children_bad == 0 && parent_bad == 0 ? 0 : 1;
}

// fork mode runs the server in a process of its own, so that the client process has a
// single thread when it forks: a fork while other threads allocate can leave a child with
// a locked allocator (glibc copes, ASan's does not), which is not what this test is about.
pid_t start_server_process(const char* ca, const char* cert, const char* key, int& port) {
    int fds[2];
    if (::pipe(fds) != 0) return -1;
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(fds[0]);
        Server server;
        int p = server.start(ca, cert, key) ? server.port : -1;
        if (::write(fds[1], &p, sizeof p) != sizeof p) std::_Exit(1);
        ::close(fds[1]);
        if (p < 0) std::_Exit(1);
        for (;;) ::pause();  // serves until the parent kills it
    }
    ::close(fds[1]);
    if (pid < 0 || ::read(fds[0], &port, sizeof port) != sizeof port || port < 0) port = -1;
    ::close(fds[0]);
    return pid;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 7) {
        std::fprintf(stderr, "usage: %s threads|fork CA CERT KEY SERVER_CERT SERVER_KEY [N] [ROUNDS]\n", argv[0]);
        return 2;
    }
    std::string mode = argv[1];
    const char* ca = argv[2];
    const char* cert = argv[3];
    const char* key = argv[4];
    int n = argc > 7 ? std::atoi(argv[7]) : 8;
    int rounds = argc > 8 ? std::atoi(argv[8]) : 4;

    Server server;
    pid_t server_pid = -1;
    int port = -1;
    if (mode == "fork") {
        server_pid = start_server_process(ca, argv[5], argv[6], port);
        if (server_pid < 0 || port < 0) return 1;
    } else {
        if (!server.start(ca, argv[5], argv[6])) return 1;
        port = server.port;
    }
    SslCtxPtr ctx = client_ctx(ca, cert, key);
    int rc = 1;
    if (ctx) {
        std::string cn = cert_cn(cert);
        rc = mode == "fork" ? run_fork(ctx.get(), port, cn, n, rounds) : run_threads(ctx.get(), port, cn, n, rounds);
    }
    ctx.reset();
    if (server_pid > 0) {
        ::kill(server_pid, SIGTERM);
        ::waitpid(server_pid, nullptr, 0);
    } else {
        server.shutdown();
    }
    return rc;
}
