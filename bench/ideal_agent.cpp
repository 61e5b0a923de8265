// keyward-bench-ideal-agent: the ideal socket agent of issue 15, the floor any agent is
// measured against. One thread and one PKCS#11 session per client connection: blocking
// read of a digest → C_SignInit/C_Sign → one write of a minimal answer (ideal_wire.hpp).
// No event loop, no policy, no audit, no hand-off: the same two wake-ups per request as
// any agent pays, and nothing else.
//
//   keyward-bench-ideal-agent --socket PATH --module SO --token LABEL --key LABEL
//                             --pin-file FILE --key-type ec-p256|rsa-2048
//
// Runs until SIGTERM/SIGINT. It logs in once and serves one key (the harness starts one
// per key type).
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "bench/ideal_wire.hpp"
#include "bench/signers.hpp"
#include "core/unique_fd.hpp"

using namespace keyward::bench;

namespace {

int fail(const std::string& what) {
    std::fprintf(stderr, "keyward-bench-ideal-agent: %s\n", what.c_str());
    return 1;
}

void serve(int fd, std::unique_ptr<ThreadSigner> signer) {
    keyward::UniqueFd conn(fd);
    unsigned char digest[ideal::kRequestSize];
    unsigned char answer[2 + ideal::kMaxSignature];
    std::string error;
    while (ideal::read_full(conn.get(), digest, sizeof digest)) {
        size_t len = ideal::kMaxSignature;
        if (!signer->sign_digest(digest, answer + 2, len, error)) {
            std::fprintf(stderr, "keyward-bench-ideal-agent: %s\n", error.c_str());
            len = 0;
        }
        answer[0] = static_cast<unsigned char>(len >> 8);
        answer[1] = static_cast<unsigned char>(len);
        if (!ideal::write_full(conn.get(), answer, 2 + len)) return;
    }
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    std::string err;
    if (!o.parse(argc, argv, err)) return fail(err);
    const std::string path = o.get("socket"), key_type = o.get("key-type", "ec-p256");
    if (path.empty()) return fail("--socket is required");
    if (key_type != "ec-p256" && key_type != "rsa-2048") return fail("--key-type must be ec-p256 or rsa-2048");
    auto signer = make_pkcs11_signer(o, key_type == "ec-p256" ? KeyKind::ec_p256 : KeyKind::rsa_2048, err);
    if (!signer) return fail("setup failed: " + err);

    keyward::UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (!listener || path.size() >= sizeof addr.sun_path) return fail("cannot make a socket for " + path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    ::unlink(path.c_str());
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener.get(), 128) != 0)
        return fail("cannot listen on " + path + ": " + std::strerror(errno));

    // The listener blocks in accept() on the main thread; SIGTERM ends the process (the
    // token's sessions go with it, as they would with any agent that is killed).
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return fail(std::string("accept: ") + std::strerror(errno));
        }
        auto session = signer->for_thread(err);
        if (!session) {
            ::close(fd);
            std::fprintf(stderr, "keyward-bench-ideal-agent: %s\n", err.c_str());
            continue;
        }
        std::thread(serve, fd, std::move(session)).detach();
    }
}
