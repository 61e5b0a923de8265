// keyward-bench-sign: signatures/s and latency of one signing path.
//
//   keyward-bench-sign --mode direct|p11kit|keyward|provider|software --key-type ec-p256|rsa-2048
//                      [--threads N] [--duration S] [--warmup S] [--ops N]
//     direct, p11kit: --module SO --token LABEL --key LABEL --pin-file FILE
//                     (p11kit: SO is p11-kit-client.so, P11_KIT_SERVER_ADDRESS set by the caller)
//     keyward:        --key NAME [--socket PATH] [--client shared|per-thread]
//     provider:       --provider-path DIR --key NAME (KEYWARD_SOCKET names the agent)
//     tpm:            --tcti T --key-dir DIR --key NAME (keyward's TPM backend in-process)
//
// Each thread signs in a loop; operations started during warm-up are not counted. With
// --ops N the run instead stops after N signatures in all (used by the memory test).
// Prints one JSON line: ops_per_s, p50_us, p99_us, and the configuration.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "bench/bench_common.hpp"
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

}  // namespace

int main(int argc, char** argv) {
    Options o;
    std::string err;
    if (!o.parse(argc, argv, err)) return usage(err);
    const std::string mode = o.get("mode"), key_type = o.get("key-type", "ec-p256");
    const int threads = static_cast<int>(o.number("threads", 1));
    const double duration = o.number("duration", 5), warmup = o.number("warmup", 1);
    const auto total_ops = static_cast<uint64_t>(o.number("ops", 0));
    if (threads < 1 || threads > 256) return usage("--threads must be 1..256");
    KeyKind kind;
    if (key_type == "ec-p256") kind = KeyKind::ec_p256;
    else if (key_type == "rsa-2048") kind = KeyKind::rsa_2048;
    else return usage("--key-type must be ec-p256 or rsa-2048");

    std::unique_ptr<Signer> signer;
    if (mode == "direct" || mode == "p11kit") signer = make_pkcs11_signer(o, kind, err);
    else if (mode == "keyward") signer = make_agent_signer(o, kind, err);
    else if (mode == "software") signer = make_software_signer(o, kind, err);
    else if (mode == "provider") signer = make_provider_signer(o, kind, err);
    else if (mode == "tpm") signer = make_tpm_signer(o, kind, err);
    else return usage("--mode must be direct, p11kit, keyward, provider, software or tpm");
    if (!signer) {
        std::fprintf(stderr, "keyward-bench-sign: %s: setup failed: %s\n", mode.c_str(), err.c_str());
        return 1;
    }

    std::vector<Worker> workers(threads);
    for (auto& w : workers) {
        w.signer = signer->for_thread(err);
        if (!w.signer) {
            std::fprintf(stderr, "keyward-bench-sign: %s: %s\n", mode.c_str(), err.c_str());
            return 1;
        }
        w.latencies_ns.reserve(total_ops ? 0 : 1 << 20);
    }

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
    double window = 0, cpu0 = process_cpu_seconds();
    if (!total_ops) {
        std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
        cpu0 = process_cpu_seconds();
        window = clock.run(0, duration);
    }
    const double cpu = process_cpu_seconds() - cpu0;
    for (auto& t : pool) t.join();
    if (total_ops) window = clock.seconds_since_begin();

    bool failed = false;
    for (auto& w : workers)
        if (!w.error.empty()) {
            std::fprintf(stderr, "keyward-bench-sign: %s: %s\n", mode.c_str(), w.error.c_str());
            failed = true;
        }
    if (failed) return 1;

    std::vector<std::vector<uint32_t>> lat;
    for (auto& w : workers) lat.push_back(std::move(w.latencies_ns));
    const LatencySummary s = summarize(lat);
    JsonLine j;
    j.field("bench", std::string("sign"))
        .field("mode", mode)
        .field("key_type", key_type)
        .field("threads", int64_t{threads});
    if (mode == "keyward") j.field("client", o.get("client", "shared"));
    j.field("seconds", window)
        .field("ops", static_cast<int64_t>(s.count))
        .field("ops_per_s", window > 0 ? static_cast<double>(s.count) / window : 0.0)
        .field("p50_us", s.p50_us)
        .field("p99_us", s.p99_us)
        .field("client_cpu_us_per_op", s.count ? cpu * 1e6 / static_cast<double>(s.count) : 0.0);
    std::printf("%s\n", j.str().c_str());
    return 0;
}
