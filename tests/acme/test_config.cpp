// check_acme_issuer: strict, every error names file:line and the key.
#include <catch2/catch.hpp>

#include "agent/lifecycle/acme/acme_config.hpp"
#include "agent/lifecycle/acme/acme_issuer.hpp"

using keyward::lifecycle::check_acme_issuer;

namespace {

std::string check(const std::string& body) {
    std::string text = "[identities.web.issuer]\n" + body;
    toml::table root = toml::parse(std::string_view(text), std::string_view("keyward.toml"));
    const toml::table* t = root["identities"]["web"]["issuer"].as_table();
    keyward::Status s = check_acme_issuer(*t, "keyward.toml", "identities.web.issuer");
    return s.ok() ? "ok" : s.message;
}

const std::string kGood =
    "kind = \"acme\"\ndirectory = \"https://127.0.0.1:14000/dir\"\nhttp01_listen = \"127.0.0.1:5002\"\n";

}  // namespace

TEST_CASE("a minimal and a full ACME issuer table are accepted", "[acme][config]") {
    CHECK(check(kGood) == "ok");
    CHECK(check(kGood +
                "ca_file = \"/etc/ssl/pebble.pem\"\naccount_key = \"acme-acct\"\naccount_key_type = \"ec-p384\"\n"
                "account_key_token = \"tpm\"\ncontact = [\"mailto:ops@example.com\"]\nagree_terms = true\n"
                "challenge = \"http-01\"\ntimeout = 120\nrequest_timeout = 20\n") == "ok");
    CHECK(check("kind = \"acme\"\ndirectory = \"https://acme.example/dir\"\nchallenge = \"dns-01\"\n"
                "dns01_hook = [\"/usr/local/bin/dns-hook\", \"--zone\", \"example\"]\ndns01_wait = 5\n") == "ok");
    toml::table root = toml::parse(kGood + "timeout = \"1m30s\"\nrequest_timeout = 20\ncontact = [\"mailto:a@b\"]\n");
    auto cfg = keyward::acme::read_acme_config(root);
    CHECK(cfg.directory == "https://127.0.0.1:14000/dir");
    CHECK(cfg.account_key == "acme-account");
    CHECK(cfg.account_key_type == "ec-p256");
    CHECK(cfg.challenge == "http-01");
    CHECK(cfg.timeout == std::chrono::seconds(90));
    CHECK(cfg.request_timeout == std::chrono::seconds(20));
    for (const char* bad : {"\"90\"", "\"5x\"", "\"m\"", "\"-5s\"", "\"\"", "1.5", "true"}) {
        INFO(bad);
        CHECK(check(kGood + "timeout = " + bad + "\n").find("timeout: must be a duration") != std::string::npos);
    }
    CHECK(check(kGood + "timeout = \"2h\"\n").find("between 1 and 3600") != std::string::npos);
    CHECK(check(kGood + "timeout = \"1m\"\nrequest_timeout = \"61s\"\n").find("must not exceed timeout") !=
          std::string::npos);
    CHECK(cfg.contact == std::vector<std::string>{"mailto:a@b"});
}

TEST_CASE("errors name the file, the line and the key", "[acme][config]") {
    CHECK(check(kGood + "directroy = \"x\"\n") ==
          "keyward.toml:5: identities.web.issuer.directroy: unknown key for an ACME issuer");
    CHECK(
        check(kGood + "timeout = \"soon\"\n") ==
        "keyward.toml:5: identities.web.issuer.timeout: must be a duration (\"90s\", \"5m\", \"1h\") or whole seconds");
    CHECK(check("kind = \"acme\"\ndirectory = \"http://127.0.0.1/dir\"\nhttp01_listen = \"127.0.0.1:80\"\n") ==
          "keyward.toml:3: identities.web.issuer.directory: URL \"http://127.0.0.1/dir\": only https is allowed");
}

TEST_CASE("wrong types and values are refused", "[acme][config]") {
    const std::pair<std::string, std::string> cases[] = {
        {"ca_file = \"relative.pem\"\n", "ca_file: must be an absolute path"},
        {"ca_file = 5\n", "ca_file: must be a string"},
        {"account_key = \"\"\n", "account_key: must not be empty"},
        {"account_key_type = \"ed25519\"\n", "account_key_type: must be one of"},
        {"contact = \"mailto:a@b\"\n", "contact: must be a list of strings"},
        {"contact = [\"a@b\"]\n", "contact: each contact must be a mailto: URL"},
        {"contact = [1]\n", "contact: must be a list of non-empty strings"},
        {"agree_terms = \"yes\"\n", "agree_terms: must be true or false"},
        {"challenge = \"tls-alpn-01\"\n", "challenge: must be \"http-01\" or \"dns-01\""},
        {"timeout = 0\n", "timeout: must be between 1 and 3600 seconds"},
        {"request_timeout = 99999\n", "request_timeout: must be between 1 and 3600 seconds"},
        {"dns01_wait = -1\n", "dns01_wait: must be between 0 and 3600 seconds"},
        {"dns01_hook = [\"hook.sh\"]\n", "dns01_hook: the command must be an absolute path"},
        {"dns01_hook = []\n", "dns01_hook: must name a command"},
        {"timeout = 10\nrequest_timeout = 20\n", "request_timeout: must not exceed timeout"},
    };
    for (const auto& [line, expected] : cases) {
        INFO(line);
        std::string got = check(kGood + line);
        CHECK(got.rfind("keyward.toml:", 0) == 0);
        CHECK(got.find("identities.web.issuer." + expected) != std::string::npos);
    }
    CHECK(check("kind = \"cmp\"\ndirectory = \"https://x/\"\nhttp01_listen = \"127.0.0.1:80\"\n")
              .find("kind: must be \"acme\"") != std::string::npos);
    CHECK(check("directory = \"https://x/\"\nhttp01_listen = \"127.0.0.1:80\"\n").find("kind: missing") !=
          std::string::npos);
    CHECK(check("kind = \"acme\"\nhttp01_listen = \"127.0.0.1:80\"\n").find("directory: missing") != std::string::npos);
    CHECK(check("kind = \"acme\"\ndirectory = \"https://x/\"\n").find("http01_listen: missing") != std::string::npos);
    CHECK(check("kind = \"acme\"\ndirectory = \"https://x/\"\nchallenge = \"dns-01\"\n").find("dns01_hook: missing") !=
          std::string::npos);
    for (const char* listen : {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":80", "::1:80", "[::1]", "host:8x"}) {
        INFO(listen);
        CHECK(check(std::string("kind = \"acme\"\ndirectory = \"https://x/\"\nhttp01_listen = \"") + listen + "\"\n")
                  .find("http01_listen: expected") != std::string::npos);
    }
}

TEST_CASE("proxy and no_proxy", "[acme][config]") {
    auto read = [](const std::string& body) { return keyward::acme::read_acme_config(toml::parse(body)); };
    CHECK_FALSE(read(kGood).proxy);  // unset: the environment's https_proxy / no_proxy
    CHECK_FALSE(read(kGood).no_proxy);
    const std::string both =
        kGood + "proxy = \"http://127.0.0.1:3128\"\nno_proxy = \"localhost,.internal,10.0.0.0/8\"\n";
    CHECK(check(both) == "ok");
    CHECK(read(both).proxy == std::optional<std::string>("http://127.0.0.1:3128"));
    CHECK(read(both).no_proxy == std::optional<std::string>("localhost,.internal,10.0.0.0/8"));
    CHECK(check(kGood + "proxy = \"http://[::1]:3128\"\nno_proxy = \"\"\n") == "ok");  // "": no exceptions
    CHECK(read(kGood + "no_proxy = \"\"\n").no_proxy == std::optional<std::string>(""));
    CHECK(check(kGood + "no_proxy = \"*\"\n") == "ok");

    CHECK(check(kGood + "proxy = \"https://p.example:3128\"\n") ==
          "keyward.toml:5: identities.web.issuer.proxy: URL \"https://p.example:3128\": only http is allowed "
          "(expected \"http://host:port\")");
    CHECK(check(kGood + "proxy = \"http://user:pw@p:3128\"\n").find("keyward.toml:5: identities.web.issuer.proxy:") ==
          0);
    CHECK(check(kGood + "proxy = \"http://user:pw@p:3128\"\n").find("user info is not allowed") != std::string::npos);
    CHECK(check(kGood + "proxy = \"p.example:3128\"\n").find("proxy: URL \"p.example:3128\": not an absolute URL") !=
          std::string::npos);
    CHECK(check(kGood + "proxy = \"http://p:0\"\n").find("bad port") != std::string::npos);
    CHECK(check(kGood + "proxy = \"\"\n").find("proxy: must not be empty") != std::string::npos);
    CHECK(check(kGood + "proxy = 3128\n").find("keyward.toml:5: identities.web.issuer.proxy: must be a string") == 0);
    CHECK(check(kGood + "no_proxy = \"a;b\"\n").find("keyward.toml:5: identities.web.issuer.no_proxy: expected") == 0);
    CHECK(check(kGood + "no_proxy = [\"a\"]\n").find("no_proxy: must be a string") != std::string::npos);
}
