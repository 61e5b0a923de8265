// keyward-bench-agent: the agent-side measurements that need a real client.
//
//   keyward-bench-agent idle --socket PATH --clients N
//       Opens N connections (one keyward::Client each, HELLO answered), prints
//       "ready N" and keeps them open until stdin closes. Raises RLIMIT_NOFILE itself.
//   keyward-bench-agent startup --socket PATH --key NAME [--timeout S] -- KEYWARDD ARGS...
//       Execs KEYWARDD ARGS, then signs with NAME until the agent answers; prints one JSON
//       line with the time from exec to the first served signature, then stops the agent
//       with SIGTERM and waits for it.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_common.hpp"
#include "bench/signers.hpp"
#include "ipc/client.hpp"

using namespace keyward;
using namespace keyward::bench;

namespace {

int fail(const std::string& what) {
    std::fprintf(stderr, "keyward-bench-agent: %s\n", what.c_str());
    return 1;
}

int idle(const Options& o) {
    const auto n = static_cast<size_t>(o.number("clients", 1000));
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < n + 64) {
        rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, n + 64);
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    std::vector<std::unique_ptr<Client>> clients;
    clients.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        ClientOptions co;
        co.socket_path = o.get("socket");
        co.client_name = "keyward-bench-idle";
        auto c = std::make_unique<Client>(co);
        Status s = c->connect();
        if (!s.ok()) return fail("connection " + std::to_string(i) + ": " + s.message);
        clients.push_back(std::move(c));
    }
    std::printf("ready %zu\n", clients.size());
    std::fflush(stdout);
    std::string line;
    while (std::getline(std::cin, line)) {}
    return 0;
}

int startup(const Options& o, char** agent_argv) {
    if (agent_argv == nullptr || agent_argv[0] == nullptr) return fail("startup needs -- KEYWARDD ARGS");
    const std::string key = o.get("key");
    const double timeout_s = o.number("timeout", 120);
    const auto t0 = Clock::now();
    pid_t pid = fork();
    if (pid < 0) return fail("fork failed");
    if (pid == 0) {
        execv(agent_argv[0], agent_argv);
        _exit(127);
    }
    ClientOptions co;
    co.socket_path = o.get("socket");
    co.timeout = std::chrono::milliseconds(2000);
    co.client_name = "keyward-bench-startup";
    double ready_ms = -1, signed_ms = -1;
    std::string last_error;
    while (std::chrono::duration<double>(Clock::now() - t0).count() < timeout_s) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) return fail("keywardd exited during startup");
        Client c(co);  // a fresh client each try: no reconnect back-off in the way
        if (c.connect().ok()) {
            if (ready_ms < 0) ready_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
            auto r =
                c.sign(key, ipc::Scheme::ecdsa_secp256r1_sha256, std::span<const uint8_t>(kDigest, sizeof kDigest));
            if (r.ok()) {
                signed_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
                break;
            }
            last_error = r.status().message;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    if (signed_ms < 0) return fail("no signature from the agent in time: " + last_error);
    JsonLine j;
    j.field("bench", std::string("startup"))
        .field("key", key)
        .field("socket_ready_ms", ready_ms)
        .field("first_signature_ms", signed_ms);
    std::printf("%s\n", j.str().c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return fail("usage: keyward-bench-agent idle|startup ...");
    int split = argc;
    for (int i = 2; i < argc; ++i)
        if (std::strcmp(argv[i], "--") == 0) {
            split = i;
            break;
        }
    Options o;
    std::string err;
    if (!o.parse(split - 1, argv + 1, err)) return fail(err);
    const std::string cmd = argv[1];
    if (cmd == "idle") return idle(o);
    if (cmd == "startup") return startup(o, split < argc ? argv + split + 1 : nullptr);
    return fail("unknown command " + cmd);
}
