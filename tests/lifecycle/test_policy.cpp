// Durations, fractions, the renewal schedule and the retry backoff.
#include <catch2/catch.hpp>

#include "core/durations.hpp"
#include "agent/lifecycle/schedule.hpp"

using namespace keyward;
using namespace keyward::lifecycle;

TEST_CASE("durations parse the forms the configuration documents", "[durations]") {
    CHECK(parse_duration("90s") == 90);
    CHECK(parse_duration("1m") == 60);
    CHECK(parse_duration("6h") == 21600);
    CHECK(parse_duration("7d") == 604800);
    CHECK(parse_duration("1w") == 604800);
    CHECK(parse_duration("1h30m") == 5400);
    CHECK(parse_duration("2d3h4m5s") == 2 * 86400 + 3 * 3600 + 4 * 60 + 5);
    CHECK(parse_duration("45") == 45);
    CHECK(parse_duration("0s") == 0);
}

TEST_CASE("durations refuse what is ambiguous or malformed", "[durations]") {
    for (const char* bad : {"", "h", "1x", "-5m", "1.5h", "1h30", "1 h", "99999999999999999999d", "5m-"})
        CHECK_FALSE(parse_duration(bad).has_value());
}

TEST_CASE("fractions and percentages", "[durations]") {
    CHECK(*parse_fraction("2/3") == Approx(2.0 / 3.0));
    CHECK(*parse_fraction("66%") == Approx(0.66));
    CHECK(*parse_fraction("0.5") == Approx(0.5));
    for (const char* bad : {"", "1", "0", "3/2", "1/0", "100%", "abc", "-1/2"})
        CHECK_FALSE(parse_fraction(bad).has_value());
    CHECK(*parse_percent("5%") == Approx(0.05));
    CHECK(*parse_percent("0%") == Approx(0.0));
    CHECK_FALSE(parse_percent("5").has_value());
    CHECK_FALSE(parse_percent("100%").has_value());
}

TEST_CASE("durations and times format for people", "[durations]") {
    CHECK(format_duration(0) == "0s");
    CHECK(format_duration(59) == "59s");
    CHECK(format_duration(3600) == "1h");
    CHECK(format_duration(90061) == "1d 1h 1m 1s");
    CHECK(format_duration(-60) == "-1m");
    CHECK(format_time(0) == "1970-01-01T00:00:00Z");
    CHECK(format_time(1795500987) == "2026-11-24T06:16:27Z");
}

TEST_CASE("renewal at a fraction of the lifetime", "[schedule]") {
    RenewalPolicy p;
    p.jitter_fraction = 0;
    const int64_t nb = 1'000'000, na = nb + 90 * 86400;
    CHECK(renewal_time(p, nb, na, 0.7) == nb + 60 * 86400);  // default 2/3
    p.renew_fraction = 0.5;
    CHECK(renewal_time(p, nb, na, 0.0) == nb + 45 * 86400);
}

TEST_CASE("renewal a duration before expiry, never before not_before", "[schedule]") {
    RenewalPolicy p;
    p.jitter_fraction = 0;
    p.renew_before = 7 * 86400;
    const int64_t nb = 1'000'000, na = nb + 30 * 86400;
    CHECK(renewal_time(p, nb, na, 0.3) == na - 7 * 86400);
    p.renew_before = 60 * 86400;  // longer than the lifetime: renew as soon as it is valid
    CHECK(renewal_time(p, nb, na, 0.3) == nb);
}

TEST_CASE("jitter moves the renewal earlier, within its window, stably", "[schedule]") {
    RenewalPolicy p;  // 2/3, 5% jitter
    const int64_t nb = 0, na = 100'000;
    const int64_t plain = 66'666;
    CHECK(renewal_time(p, nb, na, 0.0) == plain);
    CHECK(renewal_time(p, nb, na, 0.5) == plain - 2'500);
    CHECK(renewal_time(p, nb, na, 0.999) >= plain - 5'000);
    CHECK(renewal_time(p, nb, na, 0.999) < plain);
    p.jitter_seconds = 600;  // absolute window
    CHECK(renewal_time(p, nb, na, 0.5) == plain - 300);
    // The spread of a serial is the same every time (a restart keeps the plan).
    const char serial[] = "0CE6FF9D68BC62A8";
    CHECK(spread_from(serial, sizeof serial) == spread_from(serial, sizeof serial));
    CHECK(spread_from(serial, sizeof serial) >= 0.0);
    CHECK(spread_from(serial, sizeof serial) < 1.0);
    const char other[] = "0CE6FF9D68BC62A9";
    CHECK(spread_from(serial, sizeof serial) != spread_from(other, sizeof other));
}

TEST_CASE("backoff doubles from retry_min up to retry_max", "[schedule]") {
    RenewalPolicy p;
    p.retry_min = 60;
    p.retry_max = 3600;
    const int64_t now = 1'000'000;
    const std::optional<int64_t> far = now + 365 * 86400;
    CHECK(retry_delay(p, 1, now, far, 1.0) == 60);
    CHECK(retry_delay(p, 2, now, far, 1.0) == 120);
    CHECK(retry_delay(p, 3, now, far, 1.0) == 240);
    CHECK(retry_delay(p, 6, now, far, 1.0) == 1920);
    CHECK(retry_delay(p, 7, now, far, 1.0) == 3600);
    CHECK(retry_delay(p, 50, now, far, 1.0) == 3600);
    CHECK(retry_delay(p, 1000, now, std::nullopt, 1.0) == 3600);
}

TEST_CASE("backoff jitter stays within 80-100% of the step", "[schedule]") {
    RenewalPolicy p;
    p.retry_min = 100;
    p.retry_max = 100'000;
    const std::optional<int64_t> far = int64_t{1} << 40;
    CHECK(retry_delay(p, 5, 0, far, 0.0) == 1280);
    CHECK(retry_delay(p, 5, 0, far, 0.5) == 1440);
    CHECK(retry_delay(p, 5, 0, far, 1.0) == 1600);
}

TEST_CASE("backoff gets shorter as expiry nears, and retry_min once expired", "[schedule]") {
    RenewalPolicy p;
    p.retry_min = 60;
    p.retry_max = 6 * 3600;
    const int64_t now = 1'000'000;
    // 2 hours left: never more than a quarter of it.
    CHECK(retry_delay(p, 20, now, now + 7200, 1.0) == 1800);
    // 2 minutes left: a quarter is below retry_min, so retry_min.
    CHECK(retry_delay(p, 20, now, now + 120, 1.0) == 60);
    // Expired: retry_min, however many failures.
    CHECK(retry_delay(p, 20, now, now - 10, 1.0) == 60);
    CHECK(retry_delay(p, 20, now, now - 10, 0.0) == 48);
}

TEST_CASE("a rejection holds for retry_max, not a tight loop", "[schedule]") {
    RenewalPolicy p;
    p.retry_min = 60;
    p.retry_max = 6 * 3600;
    CHECK(hold_delay(p, 1.0) == 6 * 3600);
    CHECK(hold_delay(p, 0.0) == static_cast<int64_t>(6 * 3600 * 0.8));
}
