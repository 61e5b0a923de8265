// What a client can make the agent write to its log: escaped, cut, and rate-limited.
#include <catch2/catch.hpp>

#include <string>

#include "agent/log_limiter.hpp"
#include "core/log.hpp"

using keyward::agent::LogLimiter;
using keyward::log::client_text;

TEST_CASE("client_text: control bytes and non-ASCII are escaped, backslashes too", "[log]") {
    CHECK(client_text("web-1.client_A") == "web-1.client_A");
    CHECK(client_text("k1\x1b[2J\n<0>emerg") == "k1\\x1b[2J\\x0a<0>emerg");
    CHECK(client_text(std::string("a\0b", 3)) == "a\\x00b");
    CHECK(client_text("\x7f\xc3\xa9") == "\\x7f\\xc3\\xa9");
    CHECK(client_text("a\\x0a") == "a\\x5cx0a");  // an escaped-looking name cannot pass for an escape
}

TEST_CASE("client_text: long text is cut with its length noted", "[log]") {
    const std::string huge(65000, 'k');
    const std::string shown = client_text(huge);
    CHECK(shown == std::string(64, 'k') + "...(65000 bytes)");
    CHECK(client_text(std::string(64, 'k')) == std::string(64, 'k'));
    CHECK(client_text(std::string(20, '\x01'), 4) == "\\x01\\x01\\x01\\x01...(20 bytes)");
}

TEST_CASE("LogLimiter: a burst per uid and window, then a summary of what was left out", "[log]") {
    using namespace std::chrono_literals;
    LogLimiter limiter("denials", 3, 60s);
    const auto t0 = LogLimiter::Clock::time_point{} + 1000s;
    int logged = 0;
    for (int i = 0; i < 5000; ++i) logged += limiter.allow(1001, t0 + std::chrono::milliseconds(i));
    CHECK(logged == 3);
    CHECK(limiter.allow(1002, t0));              // another uid has its own burst
    CHECK(limiter.summaries(t0 + 30s).empty());  // the window is still open
    auto lines = limiter.summaries(t0 + 61s);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == "uid=1001: 4997 more denials in the last 60 s");
    CHECK(limiter.allow(1001, t0 + 62s));  // a new window logs again
    CHECK(limiter.summaries(t0 + 200s).empty());
}
