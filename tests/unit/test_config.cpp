// Configuration parsing: what a good file gives, and how bad files are reported.
#include <catch2/catch.hpp>

#include "agent/config.hpp"
#include "agent/policy.hpp"
#include "agent/server.hpp"

using namespace keyward;
using namespace keyward::agent;

namespace {

Status parse_error(std::string_view text) {
    auto r = parse_config(text, "/etc/keyward/keyward.toml");
    REQUIRE_FALSE(r.ok());
    return r.status();
}

}  // namespace

TEST_CASE("a full configuration", "[config]") {
    auto r = parse_config(R"(
[agent]
socket = "/run/k.sock"
socket_mode = "0660"
socket_group = 0
state_dir = "/var/lib/k"
admin_users = ["root", 1234]
log_level = "debug"

[tokens.hsm]
kind = "pkcs11"
module = "/usr/lib/softhsm/libsofthsm2.so"
uri = "pkcs11:token=keyward"
pin_file = "/etc/keyward/hsm.pin"
sessions = 4

[keys.web]
token = "hsm"
allow_users = [65534, "root"]
allow_groups = ["root"]
)",
                          "k.toml");
    REQUIRE(r.ok());
    const AgentConfig& c = r.value();
    CHECK(c.socket == "/run/k.sock");
    CHECK(c.socket_mode == 0660);
    CHECK(c.socket_group == 0u);
    CHECK(c.admins.users == std::vector<uid_t>{0, 1234});
    REQUIRE(c.tokens.size() == 1);
    CHECK(c.tokens[0].sessions == 4);
    CHECK(c.tokens[0].uri == "pkcs11:token=keyward");
    REQUIRE(c.key("web"));
    CHECK(c.key("web")->allow.users == std::vector<uid_t>{65534, 0});
    CHECK(c.key("web")->allow.groups == std::vector<gid_t>{0});
}

TEST_CASE("config errors name the file, the line and the key", "[config]") {
    auto s = parse_error("[agent]\nsocket = \"/x\"\nbogus = 1\n");
    CHECK(s.message == "/etc/keyward/keyward.toml:3: agent.bogus: unknown setting");

    s = parse_error("[agent]\n\nsocket = 5\n");
    CHECK(s.message.find(":3: agent.socket: expected a string") != std::string::npos);

    s = parse_error("[tokens.hsm]\nkind = \"pkcs11\"\nmodule = \"/m.so\"\nuri = \"pkcs11:token=a\"\nsessions = 0\n");
    CHECK(s.message.find(":5: tokens.hsm.sessions") != std::string::npos);

    s = parse_error("[keys.web]\nallow_users = [\"no-such-user-here\"]\n");
    CHECK(s.message.find(":2: keys.web.allow_users: unknown user 'no-such-user-here'") != std::string::npos);

    s = parse_error("[keys.web]\ntoken = \"nope\"\n");
    CHECK(s.message.find("keys.web.token: no token named 'nope'") != std::string::npos);

    s = parse_error("[agent]\nsocket_mode = \"999\"\n");
    CHECK(s.message.find(":2: agent.socket_mode") != std::string::npos);

    s = parse_error("[tokens.x]\nkind = \"floppy\"\n");
    CHECK(s.message.find("tokens.x.kind: unsupported kind 'floppy'") != std::string::npos);
}

TEST_CASE("TOML syntax errors carry the line", "[config]") {
    auto s = parse_error("[agent]\nsocket = \"unterminated\n");
    CHECK(s.message.rfind("/etc/keyward/keyward.toml:2: ", 0) == 0);
    s = parse_error("[agent\n");
    CHECK(s.message.rfind("/etc/keyward/keyward.toml:1: ", 0) == 0);
}

TEST_CASE("garbage and truncated config files are errors, never crashes", "[config]") {
    const std::string good = "[agent]\nsocket = \"/run/k.sock\"\n[keys.a]\nallow_users = [0]\n";
    for (size_t n = 1; n < good.size(); ++n) {
        auto r = parse_config(good.substr(0, n), "t.toml");
        if (!r.ok()) CHECK(r.status().message.rfind("t.toml", 0) == 0);
    }
    CHECK_FALSE(parse_config(std::string("\x00\xff\xfe garbage", 12), "t.toml").ok());
    CHECK_FALSE(parse_config("agent = 3", "t.toml").ok());
    CHECK_FALSE(parse_config("[keys]\nweb = 1\n", "t.toml").ok());
}

TEST_CASE("key names", "[config]") {
    CHECK(is_valid_key_name("web-1.client_A"));
    CHECK_FALSE(is_valid_key_name(""));
    CHECK_FALSE(is_valid_key_name("-x"));
    CHECK_FALSE(is_valid_key_name("a/b"));
    CHECK_FALSE(is_valid_key_name(std::string(65, 'a')));
}

TEST_CASE("policy: default deny, owners always, grants by uid and group", "[policy]") {
    auto r = parse_config("[agent]\nadmin_users = [500]\n[keys.web]\nallow_users = [1000]\nallow_groups = [0]\n", "p");
    REQUIRE(r.ok());
    AccessPolicy policy(r.value(), 4242);
    Caller root(0, 0, 1, {}), agent(4242, 4242, 2, {}), granted(1000, 1000, 3, {}), stranger(65534, 65534, 4, {}),
        admin(500, 500, 5, {});
    CHECK(policy.may_sign(root, "web"));
    CHECK(policy.may_sign(agent, "other"));
    CHECK(policy.may_sign(granted, "web"));
    CHECK_FALSE(policy.may_sign(granted, "other"));
    CHECK_FALSE(policy.may_sign(stranger, "web"));
    CHECK_FALSE(policy.may_sign(admin, "web"));
    CHECK(policy.may_manage(admin));
    CHECK_FALSE(policy.may_manage(granted));
    Caller in_root_group(77777, 0, 6, {});  // primary group 0 matches allow_groups
    CHECK(policy.may_sign(in_root_group, "web"));
    // The groups are the process's own (SO_PEERGROUPS), not the user database's.
    Caller supplementary(77777, 77777, 7, {12, 0});
    CHECK(policy.may_sign(supplementary, "web"));
    Caller dropped(77777, 77777, 8, {12});
    CHECK_FALSE(policy.may_sign(dropped, "web"));
}

TEST_CASE("config: connection limits and timeouts", "[config]") {
    auto r = parse_config(
        "[agent]\nmax_connections = 500\nmax_connections_per_uid = 20\nread_timeout = \"5s\"\n"
        "idle_timeout = 120\n",
        "l.toml");
    REQUIRE(r.ok());
    auto limits = limits_for(r.value(), 1024);
    CHECK(limits.max_connections == 500);
    CHECK(limits.max_connections_per_uid == 20);
    CHECK(limits.read_timeout == std::chrono::seconds(5));
    CHECK(limits.idle_timeout == std::chrono::seconds(120));
    CHECK(r.value().event_loops == 0);  // one per CPU
    CHECK(parse_config("[agent]\nevent_loops = 3\n", "e.toml").value().event_loops == 3);

    auto sized = limits_for(parse_config("", "d.toml").value(), 1024);
    CHECK(sized.max_connections == 1024 - 64);
    CHECK(sized.max_connections_per_uid == (1024 - 64) / 4);

    for (const char* bad :
         {"max_connections = 0", "max_connections_per_uid = -1", "read_timeout = \"soon\"", "idle_timeout = 0",
          "read_timeout = \"2d\"", "event_loops = -1", "event_loops = 65", "event_loops = \"many\""}) {
        auto e = parse_config(std::string("[agent]\n") + bad + "\n", "bad.toml");
        CHECK_FALSE(e.ok());
        CHECK(e.status().message.find("bad.toml:2") == 0);
    }
}

TEST_CASE("card tokens and adopted keys", "[config][card]") {
    auto r = parse_config(R"(
[tokens.card]
kind = "pkcs11"
module = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
uri = "pkcs11:token=SMITH.JOHN"
card = true
reader = "Gemalto PC Twin Reader 00 00"

[keys.login]
token = "card"
object = "pkcs11:id=%00%01"
)",
                          "card.toml");
    INFO(r.status().message);
    REQUIRE(r.ok());
    const auto& t = r.value().tokens.at(0);
    CHECK(t.card);
    CHECK(t.reader == "Gemalto PC Twin Reader 00 00");
    CHECK(t.sessions == 1);  // a card does one thing at a time
    CHECK(t.card_timeout_seconds == 15);
    CHECK(parse_config(R"([tokens.card]
kind = "pkcs11"
module = "m.so"
uri = "pkcs11:token=x"
card = true
card_timeout = "3s"
)",
                       "t.toml")
              .value()
              .tokens.at(0)
              .card_timeout_seconds == 3);
    REQUIRE(t.adopted.size() == 1);
    CHECK(t.adopted[0] == std::pair<std::string, std::string>{"login", "pkcs11:id=%00%01"});
    CHECK(r.value().keys.at(0).object == "pkcs11:id=%00%01");

    const char* base = "[tokens.card]\nkind = \"pkcs11\"\nmodule = \"m.so\"\nuri = \"pkcs11:token=x\"\n";
    CHECK_THAT(parse_error(std::string(base) + "reader = \"R\"\n").message, Catch::Contains("tokens.card.reader"));
    CHECK_THAT(parse_error(std::string(base) + "card = \"yes\"\n").message, Catch::Contains("tokens.card.card"));
    CHECK_THAT(parse_error(std::string(base) + "card = true\ncard_timeout = \"never\"\n").message,
               Catch::Contains("tokens.card.card_timeout"));
    CHECK_THAT(parse_error(std::string(base) + "[keys.k]\nobject = \"pkcs11:id=%01\"\n").message,
               Catch::Contains("keys.k.object"));
    CHECK_THAT(parse_error(std::string(base) + "[keys.k]\ntoken = \"card\"\nobject = \"id=%01\"\n").message,
               Catch::Contains("RFC 7512"));
    CHECK_THAT(parse_error("[tokens.t]\nkind = \"tpm\"\n[keys.k]\ntoken = \"t\"\nobject = \"pkcs11:id=%01\"\n").message,
               Catch::Contains("needs a pkcs11 token"));
}
