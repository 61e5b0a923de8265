// Runs the PC/SC monitor and prints one line per event (`<ms since start> <state> <reader>
// [ATR hex | detail]`) until stdin closes or `seconds` pass; the pcsc suite drives a
// virtual card under it. usage: monitor_probe SECONDS
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "core/hex.hpp"
#include "pcsc/monitor.hpp"

int main(int argc, char** argv) {
    int seconds = argc > 1 ? std::atoi(argv[1]) : 30;
    auto t0 = std::chrono::steady_clock::now();
    std::mutex out;
    keyward::pcsc::Monitor monitor([&](const keyward::pcsc::ReaderEvent& ev) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
        std::string extra = ev.state == keyward::pcsc::CardState::present ? keyward::to_hex(ev.atr) : ev.detail;
        std::lock_guard lock(out);
        std::printf("%lld %s %s | %s\n", static_cast<long long>(ms),
                    std::string(keyward::pcsc::card_state_name(ev.state)).c_str(), ev.reader.c_str(), extra.c_str());
        std::fflush(stdout);
    });
    monitor.start();
    pollfd in{STDIN_FILENO, POLLIN, 0};
    while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(seconds)) {
        if (poll(&in, 1, 100) > 0) {
            char buf[64];
            if (read(STDIN_FILENO, buf, sizeof buf) <= 0) break;
        }
    }
    auto s0 = std::chrono::steady_clock::now();
    monitor.stop();
    auto stop_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - s0).count();
    std::printf("stopped in %lld ms\n", static_cast<long long>(stop_ms));
    return 0;
}
