// keyward-bench-handshake: full mutual-TLS 1.3 handshakes per second against one server.
//
//   keyward-bench-handshake --port P --ca CA.pem --cert CLIENT.pem --key SOURCE
//                           [--duration S] [--warmup S] [--expect-cn CN]
//   SOURCE:  pem:FILE                       a private key file
//            store:URI                      OSSL_STORE (keyward:NAME with --provider-path DIR
//                                           --provider keyward: the keyward provider)
//            engine:ID:KEYID                ENGINE_load_private_key (libp11's pkcs11, keyward);
//                                           --engine-ctrl NAME=VALUE,... before ENGINE_init,
//                                           --engine-pin-file FILE sends the PIN ctrl from a file
//
// The key is loaded once; each iteration opens a new TCP connection, does a full TLS 1.3
// handshake (no tickets, no resumption), sends GET / to `openssl s_server -www`, reads
// the page to EOF and closes. The first page must show --expect-cn as the verified peer.
// The ENGINE API is deprecated in OpenSSL 3 but is what the libp11 and keyward engines offer.
#define OPENSSL_SUPPRESS_DEPRECATED

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/pem.h>
#include <openssl/store.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_common.hpp"

using namespace keyward::bench;

namespace {

struct SslCtxFree {
    void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};
struct SslFree {
    void operator()(SSL* s) const noexcept { SSL_free(s); }
};
struct PkeyFree {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct StoreClose {
    void operator()(OSSL_STORE_CTX* s) const noexcept { OSSL_STORE_close(s); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

int fail(const std::string& what) {
    std::fprintf(stderr, "keyward-bench-handshake: %s\n", what.c_str());
    ERR_print_errors_fp(stderr);
    return 1;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        size_t pos = s.find(sep, start);
        out.push_back(s.substr(start, pos - start));
        if (pos == std::string::npos) return out;
        start = pos + 1;
    }
}

PkeyPtr load_store_key(const Options& o, const std::string& uri) {
    if (o.has("provider-path")) OSSL_PROVIDER_set_default_search_path(nullptr, o.get("provider-path").c_str());
    if (o.has("provider")) {
        // default first, then the named one: the order docs/openssl.md recommends.
        if (OSSL_PROVIDER_load(nullptr, "default") == nullptr) return nullptr;
        if (OSSL_PROVIDER_load(nullptr, o.get("provider").c_str()) == nullptr) return nullptr;
    }
    std::unique_ptr<OSSL_STORE_CTX, StoreClose> store(OSSL_STORE_open(uri.c_str(), nullptr, nullptr, nullptr, nullptr));
    if (!store) return nullptr;
    while (!OSSL_STORE_eof(store.get())) {
        OSSL_STORE_INFO* info = OSSL_STORE_load(store.get());
        if (info == nullptr) break;
        EVP_PKEY* k =
            OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY ? OSSL_STORE_INFO_get1_PKEY(info) : nullptr;
        OSSL_STORE_INFO_free(info);
        if (k != nullptr) return PkeyPtr(k);
    }
    return nullptr;
}

// The engine stays initialised for the life of the process (the key needs it).
PkeyPtr load_engine_key(const Options& o, const std::string& id, const std::string& key_id, std::string& err) {
    ENGINE_load_builtin_engines();
    ENGINE* e = ENGINE_by_id(id.c_str());
    if (e == nullptr) {
        err = "engine " + id + " not found";
        return nullptr;
    }
    if (o.has("engine-ctrl")) {
        for (const auto& kv : split(o.get("engine-ctrl"), ',')) {
            auto eq = kv.find('=');
            if (eq == std::string::npos ||
                ENGINE_ctrl_cmd_string(e, kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 0) != 1) {
                err = "engine control " + kv.substr(0, eq) + " failed";
                return nullptr;
            }
        }
    }
    if (o.has("engine-pin-file")) {
        auto pin = read_secret_file(o.get("engine-pin-file"));
        if (!pin || ENGINE_ctrl_cmd_string(e, "PIN", pin->c_str(), 0) != 1) {
            err = "engine PIN control failed";
            return nullptr;
        }
        OPENSSL_cleanse(pin->data(), pin->size());
    }
    if (ENGINE_init(e) != 1) {
        err = "ENGINE_init(" + id + ") failed";
        return nullptr;
    }
    PkeyPtr k(ENGINE_load_private_key(e, key_id.c_str(), nullptr, nullptr));
    if (!k) err = "ENGINE_load_private_key(" + key_id + ") failed";
    return k;
}

int connect_loopback(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// One connection: handshake, GET, page to EOF. Returns false with `page` holding what came.
bool one_exchange(SSL_CTX* ctx, int port, std::string& page) {
    int fd = connect_loopback(port);
    if (fd < 0) return false;
    std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx));
    SSL_set_fd(ssl.get(), fd);
    bool ok = SSL_connect(ssl.get()) == 1;
    if (ok) {
        static const char req[] = "GET / HTTP/1.0\r\n\r\n";
        ok = SSL_write(ssl.get(), req, sizeof req - 1) > 0;
        char buf[16384];
        int n;
        page.clear();
        while (ok && (n = SSL_read(ssl.get(), buf, sizeof buf)) > 0) page.append(buf, static_cast<size_t>(n));
        ok = ok && page.rfind("HTTP/1.0 200", 0) == 0;
    }
    ssl.reset();
    ::close(fd);
    return ok;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    std::string err;
    if (!o.parse(argc, argv, err)) return fail(err);
    const int port = static_cast<int>(o.number("port", 0));
    const std::string ca = o.get("ca"), cert = o.get("cert"), key = o.get("key");
    const double duration = o.number("duration", 5), warmup = o.number("warmup", 1);
    if (port <= 0 || ca.empty() || cert.empty() || key.empty()) return fail("need --port, --ca, --cert and --key");

    PkeyPtr pkey;
    std::string kind = key.substr(0, key.find(':'));
    std::string rest = key.find(':') == std::string::npos ? "" : key.substr(key.find(':') + 1);
    if (kind == "pem") {
        FILE* f = std::fopen(rest.c_str(), "r");
        if (f != nullptr) {
            pkey.reset(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr));
            std::fclose(f);
        }
    } else if (kind == "store") {
        pkey = load_store_key(o, rest);
    } else if (kind == "engine") {
        auto colon = rest.find(':');
        if (colon == std::string::npos) return fail("engine key source is engine:ID:KEYID");
        pkey = load_engine_key(o, rest.substr(0, colon), rest.substr(colon + 1), err);
    } else {
        return fail("--key must start with pem:, store: or engine:");
    }
    if (!pkey) return fail("cannot load the client key " + key + (err.empty() ? "" : ": " + err));

    std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx || SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey(ctx.get(), pkey.get()) != 1 ||
        SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr) != 1)
        return fail("client SSL_CTX setup failed");
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);

    std::string page;
    if (!one_exchange(ctx.get(), port, page)) return fail("the first handshake failed");
    if (o.has("expect-cn") && page.find("Subject: CN=" + o.get("expect-cn")) == std::string::npos &&
        page.find("subject=CN = " + o.get("expect-cn")) == std::string::npos &&
        page.find("CN = " + o.get("expect-cn")) == std::string::npos)
        return fail("the server page does not show client CN " + o.get("expect-cn") + ":\n" + page);

    RunClock clock;
    std::vector<std::vector<uint32_t>> lat(1);
    lat[0].reserve(1 << 18);
    bool ok = true;
    std::thread loop([&] {
        std::string p;
        while (clock.phase() != RunClock::stop) {
            const auto phase = clock.phase();
            const auto t0 = Clock::now();
            if (!one_exchange(ctx.get(), port, p)) {
                ok = false;
                clock.stop_now();
                return;
            }
            if (phase == RunClock::measure)
                lat[0].push_back(static_cast<uint32_t>(
                    std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count()));
        }
    });
    std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
    const double cpu0 = process_cpu_seconds();
    const double window = clock.run(0, duration);
    const double cpu = process_cpu_seconds() - cpu0;
    loop.join();
    if (!ok) return fail("a handshake failed during the run");
    const LatencySummary s = summarize(lat);
    JsonLine j;
    j.field("bench", std::string("handshake"))
        .field("key", key)
        .field("seconds", window)
        .field("ops", static_cast<int64_t>(s.count))
        .field("ops_per_s", static_cast<double>(s.count) / window)
        .field("p50_us", s.p50_us)
        .field("p99_us", s.p99_us)
        .field("client_cpu_us_per_op", s.count ? cpu * 1e6 / static_cast<double>(s.count) : 0.0);
    std::printf("%s\n", j.str().c_str());
    return 0;
}
