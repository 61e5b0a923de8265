// Durations and fractions as people write them in the configuration: "90s", "1m", "6h",
// "7d", "1h30m"; "2/3", "66%", "0.66". Pure functions, unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace keyward {

// Seconds in "1w2d3h4m5s" form (any non-empty sequence of <digits><unit>, units w d h m s).
// A bare number is seconds. Empty, negative, overflowing or unknown units: nullopt.
std::optional<int64_t> parse_duration(std::string_view text);

// A fraction in (0, 1): "2/3", "66%", "0.66". nullopt otherwise.
std::optional<double> parse_fraction(std::string_view text);

// A percentage in [0, 100): "5%" → 0.05. nullopt when it has no '%' or is out of range.
std::optional<double> parse_percent(std::string_view text);

// "1d 2h 3m 4s"-style text, leading zero units left out ("0s" for 0; "-" prefix if negative).
std::string format_duration(int64_t seconds);

// "2026-11-22T06:01:41Z" for a Unix time.
std::string format_time(int64_t unix_seconds);

}  // namespace keyward
