// keyward-bench-sign: signatures/s and latency of one signing path.
//
//   keyward-bench-sign --mode direct|p11kit|keyward|ideal|provider|software|tpm --key-type ec-p256|rsa-2048
//                      [--threads N | --processes N] [--duration S] [--warmup S] [--ops N]
//     direct, p11kit: --module SO --token LABEL --key LABEL --pin-file FILE
//                     (p11kit: SO is p11-kit-client.so, P11_KIT_SERVER_ADDRESS set by the caller)
//     keyward:        --key NAME [--socket PATH] [--client shared|per-thread]
//     ideal:          --socket PATH (bench/ideal_agent.cpp, one connection per thread)
//     provider:       --provider-path DIR --key NAME (KEYWARD_SOCKET names the agent)
//     tpm:            --tcti T --key-dir DIR --key NAME (keyward's TPM backend in-process)
//
// Each thread signs in a loop; operations started during warm-up are not counted. With
// --ops N the run instead stops after N signatures in all (used by the memory test).
// --processes N forks N single-threaded processes (each sets up its own signer: its own
// connection, like nginx workers) that start their windows together; their latencies
// and CPU are summed as if they were threads.
// Prints one JSON line: ops_per_s, p50_us, p99_us, and the configuration.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "bench/bench_common.hpp"
#include "bench/ideal_wire.hpp"
#include "bench/signers.hpp"

using namespace keyward::bench;

namespace {

int usage(const std::string& why) {
    std::fprintf(stderr, "keyward-bench-sign: %s\n", why.c_str());
    return 2;
}

struct Worker {
    std::unique_ptr<ThreadSigner> signer;
    std::vector<uint32_t> latencies_ns;
    std::string error;
};

struct RunResult {
    std::vector<std::vector<uint32_t>> latencies;
    double window = 0;
    double cpu = 0;
    bool failed = false;
};

std::unique_ptr<Signer> make_signer(const std::string& mode, const Options& o, KeyKind kind, std::string& err) {
    if (mode == "direct" || mode == "p11kit") return make_pkcs11_signer(o, kind, err);
    if (mode == "keyward") return make_agent_signer(o, kind, err);
    if (mode == "ideal") return make_ideal_signer(o, kind, err);
    if (mode == "software") return make_software_signer(o, kind, err);
    if (mode == "provider") return make_provider_signer(o, kind, err);
    if (mode == "tpm") return make_tpm_signer(o, kind, err);
    err = "--mode must be direct, p11kit, keyward, ideal, provider, software or tpm";
    return nullptr;
}

// Sets up `threads` signers, waits for `go` (if any), then signs until the window ends.
RunResult run_threads(const std::string& mode, Signer& signer, int threads, double warmup, double duration,
                      uint64_t total_ops, const std::function<void()>& go) {
    RunResult out;
    std::string err;
    std::vector<Worker> workers(threads);
    for (auto& w : workers) {
        w.signer = signer.for_thread(err);
        if (!w.signer) {
            std::fprintf(stderr, "keyward-bench-sign: %s: %s\n", mode.c_str(), err.c_str());
            out.failed = true;
            return out;
        }
        w.latencies_ns.reserve(total_ops ? 0 : 1 << 20);
    }
    if (go) go();

    RunClock clock;
    if (total_ops) clock.begin_measure();  // count-bound: no warm-up
    std::atomic<uint64_t> done{0};
    std::vector<std::thread> pool;
    for (auto& w : workers) {
        pool.emplace_back([&, wp = &w] {
            for (;;) {
                const auto phase = clock.phase();
                if (phase == RunClock::stop) return;
                const auto t0 = Clock::now();
                if (!wp->signer->sign_once(wp->error)) {
                    clock.stop_now();
                    return;
                }
                const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
                if (phase != RunClock::measure) continue;
                wp->latencies_ns.push_back(static_cast<uint32_t>(std::min<int64_t>(ns, UINT32_MAX)));
                if (total_ops && done.fetch_add(1) + 1 >= total_ops) clock.stop_now();
            }
        });
    }
    double cpu0 = process_cpu_seconds();
    if (!total_ops) {
        std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
        cpu0 = process_cpu_seconds();
        out.window = clock.run(0, duration);
    }
    out.cpu = process_cpu_seconds() - cpu0;
    for (auto& t : pool) t.join();
    if (total_ops) out.window = clock.seconds_since_begin();
    for (auto& w : workers) {
        if (!w.error.empty()) {
            std::fprintf(stderr, "keyward-bench-sign: %s: %s\n", mode.c_str(), w.error.c_str());
            out.failed = true;
        }
        out.latencies.push_back(std::move(w.latencies_ns));
    }
    return out;
}

struct ChildReport {
    double window;
    double cpu;
    uint64_t count;
};

// N processes of one thread each. Every child makes its own signer after fork (a PKCS#11
// module or a connection must not be shared across fork), says it is ready, waits for the
// common start and sends back its report and latencies over a pipe.
RunResult run_processes(const std::string& mode, const Options& o, KeyKind kind, int processes, double warmup,
                        double duration) {
    RunResult out;
    int ready[2], go[2];
    if (pipe(ready) != 0 || pipe(go) != 0) {
        out.failed = true;
        return out;
    }
    std::vector<std::pair<pid_t, int>> children;
    for (int i = 0; i < processes; ++i) {
        int res[2];
        if (pipe(res) != 0) {
            out.failed = true;
            break;
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(ready[0]);
            close(go[1]);
            close(res[0]);
            std::string err;
            auto signer = make_signer(mode, o, kind, err);
            if (!signer) {
                std::fprintf(stderr, "keyward-bench-sign: %s: setup failed: %s\n", mode.c_str(), err.c_str());
                _exit(1);
            }
            auto r = run_threads(mode, *signer, 1, warmup, duration, 0, [&] {
                unsigned char b = 1;
                ideal::write_full(ready[1], &b, 1);
                ideal::read_full(go[0], &b, 1);
            });
            if (r.failed) _exit(1);
            ChildReport rep{r.window, r.cpu, r.latencies[0].size()};
            ideal::write_full(res[1], reinterpret_cast<const unsigned char*>(&rep), sizeof rep);
            ideal::write_full(res[1], reinterpret_cast<const unsigned char*>(r.latencies[0].data()),
                              r.latencies[0].size() * sizeof(uint32_t));
            _exit(0);
        }
        close(res[1]);
        if (pid < 0) {
            close(res[0]);
            out.failed = true;
            break;
        }
        children.emplace_back(pid, res[0]);
    }
    close(ready[1]);
    close(go[0]);
    size_t n_ready = 0;
    unsigned char b;
    while (n_ready < children.size() && ideal::read_full(ready[0], &b, 1)) ++n_ready;
    if (n_ready < children.size()) out.failed = true;
    std::vector<unsigned char> gos(children.size(), 1);
    if (!out.failed) ideal::write_full(go[1], gos.data(), gos.size());
    close(go[1]);  // a child still waiting reads EOF and starts (or, if we failed, its results are dropped)
    close(ready[0]);
    for (auto& [pid, fd] : children) {
        ChildReport rep{};
        std::vector<uint32_t> lat;
        if (ideal::read_full(fd, reinterpret_cast<unsigned char*>(&rep), sizeof rep)) {
            lat.resize(rep.count);
            if (!ideal::read_full(fd, reinterpret_cast<unsigned char*>(lat.data()), lat.size() * sizeof(uint32_t)))
                out.failed = true;
        } else {
            out.failed = true;
        }
        close(fd);
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) out.failed = true;
        out.window = std::max(out.window, rep.window);
        out.cpu += rep.cpu;
        out.latencies.push_back(std::move(lat));
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    std::string err;
    if (!o.parse(argc, argv, err)) return usage(err);
    const std::string mode = o.get("mode"), key_type = o.get("key-type", "ec-p256");
    const int threads = static_cast<int>(o.number("threads", 1));
    const int processes = static_cast<int>(o.number("processes", 0));
    const double duration = o.number("duration", 5), warmup = o.number("warmup", 1);
    const auto total_ops = static_cast<uint64_t>(o.number("ops", 0));
    if (threads < 1 || threads > 256) return usage("--threads must be 1..256");
    if (processes < 0 || processes > 256) return usage("--processes must be 1..256");
    if (processes && total_ops) return usage("--processes and --ops do not go together");
    KeyKind kind;
    if (key_type == "ec-p256") kind = KeyKind::ec_p256;
    else if (key_type == "rsa-2048") kind = KeyKind::rsa_2048;
    else return usage("--key-type must be ec-p256 or rsa-2048");

    RunResult r;
    if (processes) {
        r = run_processes(mode, o, kind, processes, warmup, duration);
    } else {
        auto signer = make_signer(mode, o, kind, err);
        if (!signer) {
            std::fprintf(stderr, "keyward-bench-sign: %s: setup failed: %s\n", mode.c_str(), err.c_str());
            return 1;
        }
        r = run_threads(mode, *signer, threads, warmup, duration, total_ops, {});
    }
    if (r.failed) return 1;

    const LatencySummary s = summarize(r.latencies);
    JsonLine j;
    j.field("bench", std::string("sign"))
        .field("mode", mode)
        .field("key_type", key_type)
        .field("threads", int64_t{processes ? processes : threads})
        .field("processes", int64_t{processes});
    if (mode == "keyward") j.field("client", o.get("client", "shared"));
    j.field("seconds", r.window)
        .field("ops", static_cast<int64_t>(s.count))
        .field("ops_per_s", r.window > 0 ? static_cast<double>(s.count) / r.window : 0.0)
        .field("p50_us", s.p50_us)
        .field("p99_us", s.p99_us)
        .field("client_cpu_us_per_op", s.count ? r.cpu * 1e6 / static_cast<double>(s.count) : 0.0);
    std::printf("%s\n", j.str().c_str());
    return 0;
}
