// Pieces shared by the benchmark programs: a tiny option parser, a run clock that
// separates warm-up from measurement, latency percentiles and one-line JSON output.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace keyward::bench {

using Clock = std::chrono::steady_clock;

// --name value pairs and bare --flags; anything else is an error the caller reports.
class Options {
public:
    bool parse(int argc, char** argv, std::string& error);
    std::string get(const std::string& name, const std::string& fallback = {}) const;
    double number(const std::string& name, double fallback) const;
    bool has(const std::string& name) const { return values_.count(name) != 0; }

private:
    std::map<std::string, std::string> values_;
};

// Warm-up, then a measured window, then stop. Workers ask phase() before each operation
// and record only operations that started inside the window.
class RunClock {
public:
    enum Phase : int { warmup = 0, measure = 1, stop = 2 };
    Phase phase() const noexcept { return static_cast<Phase>(phase_.load(std::memory_order_acquire)); }
    // Sleeps through warm-up and the window; returns the window's length in seconds.
    double run(double warmup_s, double duration_s);
    // For count-bound runs: measure from now until someone calls stop_now().
    void begin_measure() noexcept;
    double seconds_since_begin() const noexcept;
    void stop_now() noexcept { phase_.store(stop, std::memory_order_release); }

private:
    std::atomic<int> phase_{warmup};
    Clock::time_point begin_{};
};

struct LatencySummary {
    uint64_t count = 0;
    double p50_us = 0;
    double p99_us = 0;
};
LatencySummary summarize(std::vector<std::vector<uint32_t>>& per_thread_ns);

// A JSON object built field by field, printed on one line.
class JsonLine {
public:
    JsonLine& field(const std::string& k, const std::string& v);
    JsonLine& field(const std::string& k, double v);
    JsonLine& field(const std::string& k, int64_t v);
    std::string str() const { return "{" + body_ + "}"; }

private:
    void key(const std::string& k);
    std::string body_;
};

// This process's user+system CPU time so far, in seconds (getrusage).
double process_cpu_seconds();

// Reads a whole small file (a PIN file); strips one trailing newline.
std::optional<std::string> read_secret_file(const std::string& path);

}  // namespace keyward::bench
