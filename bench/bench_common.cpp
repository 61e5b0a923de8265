#include "bench/bench_common.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

namespace keyward::bench {

bool Options::parse(int argc, char** argv, std::string& error) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a.rfind("--", 0) != 0) {
            error = "unexpected argument: " + a;
            return false;
        }
        a = a.substr(2);
        auto eq = a.find('=');
        if (eq != std::string::npos) {
            values_[a.substr(0, eq)] = a.substr(eq + 1);
        } else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
            values_[a] = argv[++i];
        } else {
            values_[a] = "";
        }
    }
    return true;
}

std::string Options::get(const std::string& name, const std::string& fallback) const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
}

double Options::number(const std::string& name, double fallback) const {
    auto it = values_.find(name);
    if (it == values_.end() || it->second.empty()) return fallback;
    return std::strtod(it->second.c_str(), nullptr);
}

double RunClock::run(double warmup_s, double duration_s) {
    std::this_thread::sleep_for(std::chrono::duration<double>(warmup_s));
    auto t0 = Clock::now();
    phase_.store(measure, std::memory_order_release);
    std::this_thread::sleep_for(std::chrono::duration<double>(duration_s));
    phase_.store(stop, std::memory_order_release);
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

void RunClock::begin_measure() noexcept {
    begin_ = Clock::now();
    phase_.store(measure, std::memory_order_release);
}

double RunClock::seconds_since_begin() const noexcept {
    return std::chrono::duration<double>(Clock::now() - begin_).count();
}

LatencySummary summarize(std::vector<std::vector<uint32_t>>& per_thread_ns) {
    std::vector<uint32_t> all;
    for (auto& v : per_thread_ns) all.insert(all.end(), v.begin(), v.end());
    LatencySummary s;
    s.count = all.size();
    if (all.empty()) return s;
    auto pct = [&](double p) {
        size_t idx = static_cast<size_t>(std::floor(p * static_cast<double>(all.size() - 1)));
        std::nth_element(all.begin(), all.begin() + static_cast<long>(idx), all.end());
        return all[idx] / 1000.0;
    };
    s.p50_us = pct(0.50);
    s.p99_us = pct(0.99);
    return s;
}

void JsonLine::key(const std::string& k) {
    if (!body_.empty()) body_ += ", ";
    body_ += "\"" + k + "\": ";
}

JsonLine& JsonLine::field(const std::string& k, const std::string& v) {
    key(k);
    body_ += '"';
    for (char c : v) {
        if (c == '"' || c == '\\') body_ += '\\';
        if (static_cast<unsigned char>(c) < 0x20) continue;
        body_ += c;
    }
    body_ += '"';
    return *this;
}

JsonLine& JsonLine::field(const std::string& k, double v) {
    key(k);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f", v);
    body_ += buf;
    return *this;
}

JsonLine& JsonLine::field(const std::string& k, int64_t v) {
    key(k);
    body_ += std::to_string(v);
    return *this;
}

double process_cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::optional<std::string> read_secret_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s;
}

}  // namespace keyward::bench
