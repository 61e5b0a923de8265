// Signatures per second through keywardd with the client library, for comparing a TPM key
// through the agent with in-process ESAPI (test_tpm "[.bench]"). Not a test:
//   bench_agent SOCKET KEY [SECONDS] [THREADS]
// signs 32-byte digests with ecdsa_secp256r1_sha256 from THREADS threads sharing one Client.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "ipc/client.hpp"

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s SOCKET KEY [SECONDS] [THREADS]\n", argv[0]);
        return 2;
    }
    const std::string key = argv[2];
    const double seconds = argc > 3 ? std::atof(argv[3]) : 3.0;
    const int threads = argc > 4 ? std::atoi(argv[4]) : 1;
    keyward::ClientOptions options;
    options.socket_path = argv[1];
    keyward::Client client(options);
    if (auto s = client.connect(); !s.ok()) {
        std::fprintf(stderr, "cannot connect: %s\n", s.message.c_str());
        return 1;
    }
    const std::vector<uint8_t> digest(32, 0x5a);
    std::atomic<long> total{0};
    std::atomic<bool> failed{false};
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&] {
            long n = 0;
            while (std::chrono::steady_clock::now() < end && !failed) {
                auto sig = client.sign(key, keyward::ipc::Scheme::ecdsa_secp256r1_sha256, digest);
                if (!sig.ok()) {
                    std::fprintf(stderr, "sign failed: %s\n", sig.status().message.c_str());
                    failed = true;
                    break;
                }
                ++n;
            }
            total += n;
        });
    for (auto& th : pool) th.join();
    if (failed) return 1;
    std::printf("%s via keywardd, %d thread(s): %.0f signs/s\n", key.c_str(), threads, total / seconds);
    return 0;
}
