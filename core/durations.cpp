#include "core/durations.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <limits>

namespace keyward {
namespace {

std::optional<int64_t> unit_seconds(char unit) {
    switch (unit) {
        case 'w': return 7 * 86400;
        case 'd': return 86400;
        case 'h': return 3600;
        case 'm': return 60;
        case 's': return 1;
        default: return std::nullopt;
    }
}

// A decimal number in [0, ∞) with optional fraction part; no sign, no exponent.
std::optional<double> parse_decimal(std::string_view text) {
    if (text.empty()) return std::nullopt;
    bool dot = false, digit = false;
    for (char c : text) {
        if (c == '.') {
            if (dot) return std::nullopt;
            dot = true;
        } else if (std::isdigit(static_cast<unsigned char>(c))) {
            digit = true;
        } else {
            return std::nullopt;
        }
    }
    if (!digit) return std::nullopt;
    return std::strtod(std::string(text).c_str(), nullptr);
}

}  // namespace

std::optional<int64_t> parse_duration(std::string_view text) {
    if (text.empty()) return std::nullopt;
    int64_t total = 0;
    size_t i = 0;
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max() / 2;
    while (i < text.size()) {
        if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
        int64_t number = 0;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
            number = number * 10 + (text[i] - '0');
            if (number > kMax / (7 * 86400)) return std::nullopt;
            ++i;
        }
        int64_t unit = 1;
        if (i < text.size()) {
            auto u = unit_seconds(text[i]);
            if (!u) return std::nullopt;
            unit = *u;
            ++i;
        } else if (total != 0) {
            return std::nullopt;  // "1h30" is ambiguous: say "1h30m"
        }
        total += number * unit;
        if (total > kMax) return std::nullopt;
    }
    return total;
}

std::optional<double> parse_fraction(std::string_view text) {
    double value = 0;
    if (auto slash = text.find('/'); slash != std::string_view::npos) {
        auto num = parse_decimal(text.substr(0, slash));
        auto den = parse_decimal(text.substr(slash + 1));
        if (!num || !den || *den == 0) return std::nullopt;
        value = *num / *den;
    } else if (!text.empty() && text.back() == '%') {
        auto pct = parse_decimal(text.substr(0, text.size() - 1));
        if (!pct) return std::nullopt;
        value = *pct / 100.0;
    } else {
        auto d = parse_decimal(text);
        if (!d) return std::nullopt;
        value = *d;
    }
    if (!(value > 0.0 && value < 1.0)) return std::nullopt;
    return value;
}

std::optional<double> parse_percent(std::string_view text) {
    if (text.empty() || text.back() != '%') return std::nullopt;
    auto pct = parse_decimal(text.substr(0, text.size() - 1));
    if (!pct || *pct >= 100.0) return std::nullopt;
    return *pct / 100.0;
}

std::string format_duration(int64_t seconds) {
    if (seconds < 0) return "-" + format_duration(-seconds);
    const int64_t d = seconds / 86400, h = seconds / 3600 % 24, m = seconds / 60 % 60, s = seconds % 60;
    std::string out;
    auto add = [&](int64_t v, const char* unit) {
        if (!out.empty()) out += ' ';
        out += std::to_string(v) + unit;
    };
    if (d) add(d, "d");
    if (h) add(h, "h");
    if (m) add(m, "m");
    if (s || out.empty()) add(s, "s");
    return out;
}

std::string format_time(int64_t unix_seconds) {
    std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace keyward
