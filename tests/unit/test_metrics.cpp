// Metrics counters and rendering (agent/metrics.hpp), the metrics_listen parser, and when
// notifications are due (agent/lifecycle/notify.hpp).
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "agent/config.hpp"
#include "agent/lifecycle/notify.hpp"
#include "agent/metrics.hpp"
#include "agent/metrics_http.hpp"

using namespace keyward;
using namespace keyward::agent::metrics;
using namespace std::chrono_literals;

namespace {

bool has_line(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

}  // namespace

TEST_CASE("signature counts, histogram buckets and sums are rendered per key name", "[metrics]") {
    SigningCounters counters;
    counters.signature("web", 80us, true);   // <= 100 µs
    counters.signature("web", 300us, true);  // <= 500 µs
    counters.signature("web", 10s, true);    // +Inf
    counters.signature("web", 1ms, false);   // failures are not timed
    Snapshot snap;
    snap.version = "1.2.3";
    snap.key_names = {"web"};
    std::vector<std::string> names;
    const std::string text = render(snap, counters, names);
    CHECK(has_line(text, R"(keyward_signatures_total{key="web",result="ok"} 3)"));
    CHECK(has_line(text, R"(keyward_signatures_total{key="web",result="error"} 1)"));
    CHECK(has_line(text, R"(keyward_signature_duration_seconds_bucket{key="web",le="0.0001"} 1)"));
    CHECK(has_line(text, R"(keyward_signature_duration_seconds_bucket{key="web",le="0.00025"} 1)"));
    CHECK(has_line(text, R"(keyward_signature_duration_seconds_bucket{key="web",le="0.0005"} 2)"));
    CHECK(has_line(text, R"(keyward_signature_duration_seconds_bucket{key="web",le="2.5"} 2)"));
    CHECK(has_line(text, R"(keyward_signature_duration_seconds_bucket{key="web",le="+Inf"} 3)"));
    CHECK(has_line(text, R"(keyward_signature_duration_seconds_count{key="web"} 3)"));
    CHECK(has_line(text, R"(keyward_signature_duration_seconds_sum{key="web"} 10.00038)"));
    CHECK(has_line(text, R"(keyward_build_info{version="1.2.3"} 1)"));

    // A key deleted since keeps its name (remembered), an unknown slot is "other".
    counters.signature("never-listed", 1ms, true);
    snap.key_names.clear();
    const std::string again = render(snap, counters, names);
    CHECK(has_line(again, R"(keyward_signatures_total{key="web",result="ok"} 3)"));
    CHECK(has_line(again, R"(keyward_signatures_total{key="other",result="ok"} 1)"));
}

TEST_CASE("more keys than slots share the other slot; label values are escaped", "[metrics]") {
    SigningCounters counters;
    for (size_t i = 0; i < kKeySlots + 10; ++i) counters.signature("k" + std::to_string(i), 1ms, true);
    auto keys = counters.keys();
    REQUIRE(keys.size() == kKeySlots + 1);
    CHECK(keys.back().hash == 0);
    CHECK(keys.back().ok == 10);
    CHECK(escape_label("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
}

TEST_CASE("denials per uid are capped with an other bucket", "[metrics]") {
    SigningCounters counters;
    for (uid_t u = 1000; u < 1000 + kUidSlots + 5; ++u) counters.denial(u);
    counters.denial(1000);
    auto d = counters.denials();
    REQUIRE(d.size() == kUidSlots + 1);
    CHECK(d.front().uid == uid_t(1000));
    CHECK(d.front().denials == 2);
    CHECK(!d.back().uid.has_value());
    CHECK(d.back().denials == 5);
}

TEST_CASE("identity samples come from the lifecycle's view; failures accumulate", "[metrics]") {
    IdentityBoard board;
    int changes = 0;
    board.on_change([&] { ++changes; });
    board.publish(R"({"identities":[{"name":"web","status":"valid","not_after_unix":200,"not_before_unix":100,
                     "last_success_unix":150,"failures":0}]})");
    board.publish(R"({"identities":[{"name":"web","status":"renewal failing","not_after_unix":200,"failures":2}]})");
    board.publish(R"({"identities":[{"name":"web","status":"renewal failing","not_after_unix":200,"failures":3}]})");
    board.publish("garbage {");  // ignored: the last good view stays
    board.publish(R"({"identities": 5})");
    auto s = board.samples();
    REQUIRE(s.size() == 1);
    CHECK(s[0].status == "renewal failing");
    CHECK(s[0].failures_total == 3);
    CHECK(changes == 3);
    Snapshot snap;
    snap.identities = s;
    std::vector<std::string> names;
    const std::string text = render(snap, SigningCounters{}, names);
    CHECK(has_line(text, R"(keyward_identity_status{identity="web",status="renewal failing"} 1)"));
    CHECK(has_line(text, R"(keyward_identity_status{identity="web",status="valid"} 0)"));
    CHECK(has_line(text, R"(keyward_certificate_not_after_seconds{identity="web"} 200)"));
    CHECK(has_line(text, R"(keyward_renewal_failures_total{identity="web"} 3)"));
    // A status this build does not list is still shown when current.
    snap.identities[0].status = "quarantined";
    CHECK(has_line(render(snap, SigningCounters{}, names),
                   R"(keyward_identity_status{identity="web",status="quarantined"} 1)"));
}

TEST_CASE("metrics_listen accepts numeric HOST:PORT only", "[metrics]") {
    CHECK(split_listen("127.0.0.1:9813").ok());
    CHECK(split_listen("[::1]:9813").ok());
    CHECK(split_listen("0.0.0.0:0").ok());
    for (const char* bad :
         {"", ":", "127.0.0.1", "127.0.0.1:", ":9813", "localhost:9813", "127.0.0.1:99999", "127.0.0.1:98x3",
          "::1:9813", "[::1]9813", "[::1", "127.0.0.1:123456", "\xff\xfe:1", "1.2.3.4:5:6"})
        CHECK_FALSE(split_listen(bad).ok());
}

TEST_CASE("notifications: once per status entry and per threshold, smallest threshold only", "[notify]") {
    lifecycle::IdentityConfig cfg;
    cfg.name = "web";
    cfg.notify_before = {7 * 86400, 86400};
    lifecycle::NotifyState st;
    const int64_t now = 1'000'000;
    auto view = [&](const char* status, int64_t left, const char* serial = "01") {
        return nlohmann::ordered_json{{"status", status}, {"serial", serial}, {"not_after_unix", now + left}};
    };
    CHECK(due_notifications(cfg, view("valid", 30 * 86400), st, now).empty());
    auto n = due_notifications(cfg, view("valid", 6 * 86400), st, now);
    REQUIRE(n.size() == 1);
    CHECK(n[0].event == "expiring");
    CHECK(n[0].threshold == 7 * 86400);
    CHECK(due_notifications(cfg, view("valid", 5 * 86400), st, now).empty());
    n = due_notifications(cfg, view("renewal failing", 12 * 3600), st, now);
    REQUIRE(n.size() == 2);
    CHECK(n[0].event == "renewal failing");
    CHECK(n[1].threshold == 86400);
    CHECK(due_notifications(cfg, view("renewal failing", 3600), st, now).empty());
    n = due_notifications(cfg, view("expired", -1), st, now);
    REQUIRE(n.size() == 1);
    CHECK(n[0].event == "expired");
    // A new certificate re-arms the thresholds; a start with 12 h left announces only 1d.
    n = due_notifications(cfg, view("valid", 12 * 3600, "02"), st, now);
    REQUIRE(n.size() == 1);
    CHECK(n[0].threshold == 86400);
    CHECK(st.thresholds.size() == 2);
    // Leaving a status and entering it again announces it again.
    CHECK(due_notifications(cfg, view("renewal failing", 3600, "02"), st, now).size() == 1);
    CHECK(due_notifications(cfg, view("valid", 3600, "02"), st, now).empty());
    CHECK(due_notifications(cfg, view("renewal failing", 3600, "02"), st, now).size() == 1);
    // Garbage views announce nothing.
    CHECK(due_notifications(cfg, nlohmann::ordered_json::array(), st, now).empty());
    CHECK(due_notifications(cfg, nlohmann::ordered_json{{"status", 5}, {"not_after_unix", "x"}}, st, now).empty());
}

TEST_CASE("the metrics settings are parsed and checked", "[metrics][config]") {
    auto good = agent::parse_config(
        "[agent]\nmetrics_listen = \"[::1]:9813\"\nmetrics_file = \"/var/lib/x/keyward.prom\"\nmetrics_interval = "
        "\"30s\"\n",
        "k.toml");
    REQUIRE(good.ok());
    CHECK(good->metrics_listen == "[::1]:9813");
    CHECK(good->metrics_file == "/var/lib/x/keyward.prom");
    CHECK(good->metrics_interval_seconds == 30);
    auto defaults = agent::parse_config("", "k.toml");
    REQUIRE(defaults.ok());
    CHECK(defaults->metrics_listen.empty());
    CHECK(defaults->metrics_file.empty());
    for (const char* bad :
         {"metrics_listen = \"localhost:9813\"", "metrics_listen = 9813", "metrics_file = \"keyward.prom\"",
          "metrics_interval = \"0s\"", "metrics_interval = \"2d\""}) {
        auto r = agent::parse_config(std::string("[agent]\n") + bad + "\n", "k.toml");
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().message.find("k.toml:2") != std::string::npos);
        CHECK(r.status().message.find("agent.metrics_") != std::string::npos);
    }
}

// Not run by default: `test_unit "[.metrics-bench]"` prints the signing path's cost of counting.
TEST_CASE("cost of counting one signature", "[.metrics-bench]") {
    SigningCounters counters;
    const char* names[] = {"web", "mail-client", "vpn.gateway.key", "k4"};
    constexpr int n = 20'000'000;
    for (int threads : {1, 2}) {
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<std::thread> ts;
        for (int t = 0; t < threads; ++t)
            ts.emplace_back([&, t] {
                for (int i = 0; i < n; ++i)
                    counters.signature(names[(i + t) & 3], std::chrono::microseconds(80 + (i & 1023)), true);
            });
        for (auto& t : ts) t.join();
        const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / n;
        WARN(threads << " thread(s): " << ns << " ns per counted signature");
    }
    uint64_t total = 0;
    for (const auto& k : counters.keys()) total += k.ok;
    CHECK(total == 3ull * n);
}
