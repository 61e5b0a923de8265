// [identities] parsing: defaults, every accepted form, and errors that name file:line and key.
#include <catch2/catch.hpp>

#include <string>

#include "agent/lifecycle/identity_config.hpp"
#include "agent/lifecycle/issuers.hpp"

using namespace keyward::lifecycle;

namespace {

const std::string kIssuer = "[identities.web.issuer]\nkind = \"helper\"\ncommand = [\"/usr/bin/true\"]\n";

keyward::Result<std::vector<std::shared_ptr<const IdentityConfig>>> parse(const std::string& text) {
    toml::table doc = toml::parse(text, std::string("test.toml"));
    const toml::table* ids = doc["identities"].as_table();
    REQUIRE(ids);
    return parse_identities(*ids, "test.toml", built_in_issuer_kinds());
}

std::string error_of(const std::string& text) {
    auto r = parse(text);
    REQUIRE_FALSE(r.ok());
    return r.status().message;
}

std::string minimal(const std::string& extra) {
    return "[identities.web]\nsubject = \"/CN=web.example\"\ntrust_anchors = \"/etc/keyward/ca.pem\"\n" + extra +
           kIssuer;
}

}  // namespace

TEST_CASE("a minimal identity gets the documented defaults", "[config]") {
    auto r = parse(minimal(""));
    REQUIRE(r.ok());
    REQUIRE(r->size() == 1);
    const IdentityConfig& c = *r->front();
    CHECK(c.name == "web");
    CHECK(c.key == "web");
    CHECK(c.key_type == "ec-p256");
    CHECK(c.token.empty());
    CHECK(c.require_client_auth);
    CHECK(c.policy.renew_fraction == Approx(2.0 / 3.0));
    CHECK_FALSE(c.policy.renew_before.has_value());
    CHECK(c.policy.jitter_fraction == Approx(0.05));
    CHECK(c.policy.retry_min == 60);
    CHECK(c.policy.retry_max == 6 * 3600);
    CHECK_FALSE(c.rekey);
    CHECK(c.grace_period == 86400);
    CHECK(c.revocation_check_interval == 3600);
    CHECK(c.auto_enroll);
    CHECK(c.issuer.kind == "helper");
    CHECK(c.issuer.command == std::vector<std::string>{"/usr/bin/true"});
    CHECK(c.issuer.timeout == 300);
}

TEST_CASE("every documented key is accepted", "[config]") {
    auto r = parse(R"([identities.web]
key = "web-key"
key_type = "rsa-2048"
token = "hsm"
subject = "/CN=web.example/O=Example"
sans = ["dns:web.example", "ip:192.0.2.1"]
trust_anchors = "/etc/keyward/ca.pem"
require_client_auth = false
renew_before = "7d"
jitter = "1h"
retry_min = "30s"
retry_max = "2h"
rekey = true
grace_period = "12h"
revocation_check_interval = "10m"
dir = "/var/lib/keyward/id/web"
hooks = ["/usr/local/bin/reload-web", ["/usr/bin/logger", "renewed"]]
reload_units = ["nginx.service"]
auto_enroll = false
[identities.web.issuer]
kind = "helper"
command = ["/usr/libexec/certmonger/local-submit", "-v"]
timeout = "45s"
profile = "clientAuth"
environment = { CERTMONGER_LOCAL_CA_DIR = "/var/lib/ca" }
)");
    REQUIRE(r.ok());
    const IdentityConfig& c = *r->front();
    CHECK(c.key == "web-key");
    CHECK(c.key_type == "rsa-2048");
    CHECK(c.token == "hsm");
    CHECK(c.subject_attributes.size() == 2);
    CHECK(c.san_values.size() == 2);
    CHECK_FALSE(c.require_client_auth);
    CHECK(c.policy.renew_before == 7 * 86400);
    CHECK(c.policy.jitter_seconds == 3600);
    CHECK(c.policy.retry_min == 30);
    CHECK(c.policy.retry_max == 7200);
    CHECK(c.rekey);
    CHECK(c.grace_period == 12 * 3600);
    CHECK(c.revocation_check_interval == 600);
    CHECK(c.dir == "/var/lib/keyward/id/web");
    REQUIRE(c.hooks.size() == 2);
    CHECK(c.hooks[1] == std::vector<std::string>{"/usr/bin/logger", "renewed"});
    CHECK(c.reload_units == std::vector<std::string>{"nginx.service"});
    CHECK_FALSE(c.auto_enroll);
    CHECK(c.issuer.timeout == 45);
    CHECK(c.issuer.profile == "clientAuth");
    CHECK(c.issuer.environment.at("CERTMONGER_LOCAL_CA_DIR") == "/var/lib/ca");
}

TEST_CASE("renew_at takes fractions and percentages", "[config]") {
    auto r = parse(minimal("renew_at = \"3/4\"\njitter = \"0%\"\n"));
    REQUIRE(r.ok());
    CHECK(r->front()->policy.renew_fraction == Approx(0.75));
    CHECK(r->front()->policy.jitter_fraction == Approx(0.0));
    r = parse(minimal("renew_at = 0.5\n"));
    REQUIRE(r.ok());
    CHECK(r->front()->policy.renew_fraction == Approx(0.5));
}

TEST_CASE("config errors name the file, the line and the key", "[config]") {
    CHECK(error_of(minimal("colour = \"blue\"\n")) ==
          std::string("test.toml:4: identities.web.colour: unknown key (expected key, "
                      "key_type, token, subject, sans, trust_anchors, "
                      "require_client_auth, renew_at, renew_before, jitter, "
                      "retry_min, retry_max, rekey, grace_period, revocation_check_interval, dir, "
                      "hooks, reload_units, notify, notify_before, auto_enroll or issuer)"));
    CHECK_THAT(error_of(minimal("renew_at = \"3/2\"\n")),
               Catch::StartsWith("test.toml:4: identities.web.renew_at: expected a fraction"));
    CHECK_THAT(error_of(minimal("retry_min = \"5 minutes\"\n")),
               Catch::StartsWith("test.toml:4: identities.web.retry_min: expected a duration"));
    CHECK_THAT(error_of(minimal("key_type = \"dsa\"\n")),
               Catch::StartsWith("test.toml:4: identities.web.key_type: unknown key type"));
    CHECK_THAT(error_of(minimal("sans = [\"dns\"]\n")), Catch::StartsWith("test.toml:4: identities.web.sans:"));
    CHECK_THAT(error_of(minimal("hooks = [\"reload-web\"]\n")),
               Catch::Contains("identities.web.hooks: the program must be an absolute path"));
    CHECK_THAT(error_of(minimal("renew_at = \"1/2\"\nrenew_before = \"1d\"\n")),
               Catch::StartsWith("test.toml:5: identities.web.renew_before: give renew_at or renew_before, not both"));
    CHECK_THAT(error_of(minimal("retry_min = \"1h\"\nretry_max = \"1m\"\n")),
               Catch::Contains("identities.web.retry_max: shorter than retry_min"));
    CHECK_THAT(error_of(minimal("jitter = \"70%\"\n")), Catch::Contains("identities.web.jitter: at most 50%"));
    CHECK_THAT(error_of(minimal("rekey = \"yes\"\n")),
               Catch::StartsWith("test.toml:4: identities.web.rekey: expected true or false"));
}

TEST_CASE("required keys and issuer errors", "[config]") {
    CHECK_THAT(error_of("[identities.web]\ntrust_anchors = \"/ca.pem\"\n" + kIssuer),
               Catch::StartsWith("test.toml:1: identities.web.subject: missing"));
    CHECK_THAT(error_of("[identities.web]\nsubject = \"/CN=x\"\n" + kIssuer),
               Catch::StartsWith("test.toml:1: identities.web.trust_anchors: missing"));
    CHECK_THAT(error_of("[identities.web]\nsubject = \"/CN=x\"\ntrust_anchors = \"ca.pem\"\n" + kIssuer),
               Catch::StartsWith("test.toml:3: identities.web.trust_anchors: expected the absolute path"));
    CHECK_THAT(error_of("[identities.web]\nsubject = \"/CN=x\"\ntrust_anchors = \"/ca.pem\"\n"),
               Catch::StartsWith("test.toml:1: identities.web.issuer: missing"));
    const std::string base =
        "[identities.web]\nsubject = \"/CN=x\"\ntrust_anchors = \"/ca.pem\"\n[identities.web.issuer]\n";
    CHECK_THAT(error_of(base + "kind = \"scep\"\n"),
               Catch::StartsWith("test.toml:5: identities.web.issuer.kind: unknown issuer kind"));
    CHECK_THAT(error_of(base + "command = [\"/bin/true\"]\n"),
               Catch::StartsWith("test.toml:4: identities.web.issuer: missing kind"));
    CHECK_THAT(error_of(base + "kind = \"helper\"\n"),
               Catch::StartsWith("test.toml:4: identities.web.issuer.command: missing"));
    CHECK_THAT(error_of(base + "kind = \"helper\"\ncommand = []\n"),
               Catch::StartsWith("test.toml:6: identities.web.issuer.command: expected a program"));
    CHECK_THAT(error_of(base + "kind = \"helper\"\ncommand = [\"/bin/true\"]\nurl = \"x\"\n"),
               Catch::StartsWith("test.toml:7: identities.web.issuer.url: unknown key"));
    CHECK_THAT(
        error_of(base + "kind = \"helper\"\ncommand = [\"/bin/true\"]\nenvironment = { CERTMONGER_CSR = \"x\" }\n"),
        Catch::Contains("identities.web.issuer.environment.CERTMONGER_CSR: set by keywardd itself"));
}

TEST_CASE("names and shared keys", "[config]") {
    CHECK_THAT(error_of("[identities.\"../x\"]\nsubject = \"/CN=x\"\ntrust_anchors = \"/ca.pem\"\n"),
               Catch::Contains("identities.../x: identity names use"));
    const std::string two = minimal("") +
                            "[identities.api]\nkey = \"web\"\nsubject = \"/CN=api\"\ntrust_anchors = \"/ca.pem\"\n"
                            "[identities.api.issuer]\nkind = \"helper\"\ncommand = [\"/bin/true\"]\n";
    CHECK_THAT(
        error_of(two),
        Catch::Matches(
            "test\\.toml:[0-9]+: identities\\.(api|web)\\.key: key \"web\" already belongs to identity (web|api)"));
}

TEST_CASE("equal tables compare equal, any change does not", "[config]") {
    auto a = parse(minimal("rekey = true\n"));
    auto b = parse(minimal("rekey = true\n"));
    auto c = parse(minimal("rekey = false\n"));
    REQUIRE((a.ok() && b.ok() && c.ok()));
    CHECK(same_identity_config(*a->front(), *b->front()));
    CHECK_FALSE(same_identity_config(*a->front(), *c->front()));
}

TEST_CASE("notify programs and thresholds", "[config][notify]") {
    auto defaults = parse(minimal(""));
    REQUIRE(defaults.ok());
    CHECK(defaults->front()->notify.empty());
    CHECK(defaults->front()->notify_before == std::vector<int64_t>{7 * 86400, 86400});
    auto r =
        parse(minimal("notify = [\"/usr/local/bin/page\", [\"/usr/bin/logger\", \"-t\", \"keyward\"]]\n"
                      "notify_before = [\"14d\", \"3d\", \"12h\"]\n"));
    REQUIRE(r.ok());
    const IdentityConfig& c = *r->front();
    REQUIRE(c.notify.size() == 2);
    CHECK(c.notify[1] == std::vector<std::string>{"/usr/bin/logger", "-t", "keyward"});
    CHECK(c.notify_before == std::vector<int64_t>{14 * 86400, 3 * 86400, 12 * 3600});
    CHECK_THAT(error_of(minimal("notify = [\"page\"]\n")),
               Catch::Contains("identities.web.notify: the program must be an absolute path"));
    CHECK_THAT(error_of(minimal("notify_before = \"7d\"\n")),
               Catch::StartsWith("test.toml:4: identities.web.notify_before: expected an array of durations"));
    CHECK_THAT(error_of(minimal("notify_before = [\"soon\"]\n")),
               Catch::StartsWith("test.toml:4: identities.web.notify_before:"));
    CHECK(parse(minimal("notify_before = []\n"))->front()->notify_before.empty());
}
