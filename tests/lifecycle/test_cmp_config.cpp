// The [identities.NAME.issuer] table of kind "cmp": defaults, accepted forms, and errors
// that name file:line and key (truncated, wrong-typed and contradictory input).
#include <catch2/catch.hpp>

#include <openssl/err.h>

#include <string>

#include "agent/lifecycle/cmp/cmp_config.hpp"

using namespace keyward::cmp;

namespace {

const std::string kBase =
    "kind = \"cmp\"\nserver = \"http://127.0.0.1:8080/pkix/\"\ntrusted = \"/etc/keyward/ca.pem\"\n";
const std::string kSecret = "reference = \"kid\"\nsecret_file = \"/etc/keyward/cmp.secret\"\n";

keyward::Status check(const std::string& text) {
    toml::table t = toml::parse(text, std::string("test.toml"));
    return check_cmp_config(t, "test.toml", "identities.web.issuer");
}

std::string error_of(const std::string& text) {
    keyward::Status s = check(text);
    REQUIRE_FALSE(s.ok());
    return s.message;
}

}  // namespace

TEST_CASE("cmp: a minimal issuer gets the documented defaults", "[config][cmp]") {
    const std::string text = kBase + kSecret;
    REQUIRE(check(text).ok());
    CmpConfig c = read_cmp_config(toml::parse(text));
    CHECK(c.host == "127.0.0.1");
    CHECK(c.port == 8080);
    CHECK(c.path == "/pkix/");
    CHECK(c.trusted == "/etc/keyward/ca.pem");
    CHECK(c.has_secret());
    CHECK_FALSE(c.has_bootstrap());
    CHECK(c.digest == "sha256");
    CHECK_FALSE(c.implicit_confirm);
    CHECK(c.timeout.count() == 30);
    CHECK(c.total_timeout.count() == 120);
    CHECK(c.poll_inline_max.count() == 10);
}

TEST_CASE("cmp: every documented key is accepted", "[config][cmp]") {
    const std::string text =
        "kind = \"cmp\"\nserver = \"http://ca.example/\"\nserver_cert = \"/etc/ra.pem\"\n"
        "recipient = \"/CN=CMP RA/O=Example\"\nbootstrap_cert = \"/etc/boot.pem\"\n"
        "bootstrap_key = \"idevid\"\ndigest = \"sha384\"\nimplicit_confirm = true\n"
        "timeout = \"5s\"\ntotal_timeout = 600\npoll_inline_max = \"0s\"\n";
    REQUIRE(check(text).ok());
    CmpConfig c = read_cmp_config(toml::parse(text));
    CHECK(c.port == 80);
    CHECK(c.path == "/");
    CHECK(c.has_bootstrap());
    CHECK(c.bootstrap_key == "idevid");
    CHECK(c.recipient == "/CN=CMP RA/O=Example");
    CHECK(c.digest == "sha384");
    CHECK(c.implicit_confirm);
    CHECK(c.timeout.count() == 5);
    CHECK(c.total_timeout.count() == 600);
    CHECK(c.poll_inline_max.count() == 0);
}

TEST_CASE("cmp: an https:// server with its own TLS trust anchors", "[config][cmp]") {
    const std::string text =
        "kind = \"cmp\"\nserver = \"https://ca.example/pkix/\"\ntrusted = \"/ca.pem\"\n"
        "tls_trusted = \"/etc/keyward/tls-ca.pem\"\n" +
        kSecret;
    REQUIRE(check(text).ok());
    CmpConfig c = read_cmp_config(toml::parse(text));
    CHECK(c.tls);
    CHECK(c.port == 443);
    CHECK(c.host == "ca.example");
    CHECK(c.path == "/pkix/");
    CHECK(c.tls_trusted == "/etc/keyward/tls-ca.pem");
    CHECK_FALSE(c.tls_client_auth);
    CHECK(read_cmp_config(toml::parse(text + "tls_client_auth = true\n")).tls_client_auth);
    CHECK_FALSE(read_cmp_config(toml::parse(kBase + kSecret)).tls);
    CHECK(error_of(kBase + kSecret + "tls_client_auth = true\n").find("tls_client_auth: only for an https://") !=
          std::string::npos);
    CHECK(error_of(text + "tls_client_auth = \"yes\"\n").find("tls_client_auth: must be true or false") !=
          std::string::npos);
}

TEST_CASE("cmp: errors name the file, line and key", "[config][cmp]") {
    CHECK(error_of(kBase + kSecret + "colour = \"red\"\n") ==
          "test.toml:6: identities.web.issuer.colour: unknown key for a CMP issuer");
    CHECK(error_of("kind = \"cmp\"\ntrusted = \"/ca.pem\"\n" + kSecret).find("identities.web.issuer.server: missing") !=
          std::string::npos);
    CHECK(error_of("kind = \"cmp\"\nserver = \"https://ca.example/\"\ntrusted = \"/ca.pem\"\n" + kSecret)
              .find("identities.web.issuer.tls_trusted: missing") != std::string::npos);
    CHECK(error_of(kBase + kSecret + "tls_trusted = \"/tls.pem\"\n").find("tls_trusted: only for an https://") !=
          std::string::npos);
    CHECK(error_of("kind = \"cmp\"\nserver = \"https://ca.example/\"\ntrusted = \"/ca.pem\"\ntls_trusted = "
                   "\"/tls.pem\"\nproxy = \"http://p:1\"\n" +
                   kSecret)
              .find("proxy: not supported with an https:// server") != std::string::npos);
    CHECK(error_of("kind = \"cmp\"\nserver = \"ftp://ca.example/\"\ntrusted = \"/ca.pem\"\n" + kSecret)
              .find("identities.web.issuer.server:") != std::string::npos);
    CHECK(error_of("kind = \"cmp\"\nserver = \"ca.example\"\ntrusted = \"/ca.pem\"\n" + kSecret)
              .find("identities.web.issuer.server:") != std::string::npos);
    CHECK(error_of("kind = \"cmp\"\nserver = \"http://ca.example/\"\n" + kSecret).find("trusted: missing") !=
          std::string::npos);
    CHECK(error_of(kBase).find("needs a credential for the initial request") != std::string::npos);
    CHECK(error_of(kBase + "reference = \"kid\"\n").find("reference and secret_file go together") != std::string::npos);
    CHECK(error_of(kBase + "bootstrap_key = \"boot\"\n").find("bootstrap_cert and bootstrap_key go together") !=
          std::string::npos);
    CHECK(error_of(kBase + kSecret + "bootstrap_cert = \"/b.pem\"\nbootstrap_key = \"boot\"\n").find("not both") !=
          std::string::npos);
    CHECK(error_of(kBase + kSecret + "digest = \"md5\"\n").find("test.toml:6: identities.web.issuer.digest:") !=
          std::string::npos);
    CHECK(
        error_of(kBase + kSecret + "timeout = \"soon\"\n").find("identities.web.issuer.timeout: expected a duration") !=
        std::string::npos);
    CHECK(error_of(kBase + kSecret + "timeout = 0\n").find("must not be zero") != std::string::npos);
    CHECK(error_of(kBase + kSecret + "total_timeout = 9999999\n").find("up to a day") != std::string::npos);
    CHECK(error_of(kBase + kSecret + "poll_inline_max = \"5m\"\ntotal_timeout = \"1m\"\n")
              .find("must not exceed total_timeout") != std::string::npos);
    CHECK(error_of(kBase + "reference = \"kid\"\nsecret_file = \"relative/secret\"\n").find("absolute path") !=
          std::string::npos);
    CHECK(error_of(kBase + kSecret + "recipient = \"CN=x\"\n").find("recipient: expected a name") != std::string::npos);
    CHECK(error_of(kBase + kSecret + "implicit_confirm = \"yes\"\n").find("true or false") != std::string::npos);
    CHECK(error_of(kBase + kSecret + "bootstrap_key = \"../x\"\n").find("not a valid key name") != std::string::npos);
    CHECK(error_of(kBase + "reference = 7\nsecret_file = \"/s\"\n").find("reference: must be a string") !=
          std::string::npos);
    CHECK(error_of(kBase + "reference = \"\"\nsecret_file = \"/s\"\n").find("must not be empty") != std::string::npos);
    CHECK(error_of("kind = \"acme\"\n").find("kind: must be \"cmp\"") != std::string::npos);
}

TEST_CASE("cmp: a refused URL leaves nothing on OpenSSL's error queue", "[config][cmp]") {
    // Found by fuzzing the configuration: a stale entry would be reported later as the cause
    // of an unrelated OpenSSL failure on the same thread.
    ERR_clear_error();
    CHECK(error_of("kind = \"cmp\"\nserver = \"http://ca.example:<08{0/pkix/a\"\ntrusted = \"/ca.pem\"\n" + kSecret)
              .find("identities.web.issuer.server:") != std::string::npos);
    CHECK(error_of(kBase + kSecret + "proxy = \"http://proxy:<x\"\n").find("proxy:") != std::string::npos);
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("cmp: proxy and no_proxy", "[config][cmp]") {
    CmpConfig plain = read_cmp_config(toml::parse(kBase + kSecret));
    CHECK_FALSE(plain.proxy);  // the environment decides (http_proxy, no_proxy)
    CHECK_FALSE(plain.no_proxy);

    const std::string text =
        kBase + kSecret + "proxy = \"http://127.0.0.1:3128\"\nno_proxy = \"localhost,ca.internal\"\n";
    REQUIRE(check(text).ok());
    CmpConfig c = read_cmp_config(toml::parse(text));
    CHECK(c.proxy == std::optional<std::string>("http://127.0.0.1:3128"));
    CHECK(c.no_proxy == std::optional<std::string>("localhost,ca.internal"));
    CHECK(check(kBase + kSecret + "proxy = \"http://proxy.example\"\n").ok());
    CHECK(check(kBase + kSecret + "proxy = \"http://[::1]:3128/\"\n").ok());

    // An empty no_proxy is a decision too: no exceptions, whatever the environment says.
    CmpConfig none = read_cmp_config(toml::parse(kBase + kSecret + "proxy = \"http://p:1\"\nno_proxy = \"\"\n"));
    CHECK(none.no_proxy == std::optional<std::string>(""));

    CHECK(
        error_of(kBase + kSecret + "proxy = \"https://p.example:3128\"\n") ==
        "test.toml:6: identities.web.issuer.proxy: only http:// proxies are supported (expected \"http://host:port\")");
    CHECK(error_of(kBase + kSecret + "proxy = \"p.example:3128\"\n")
              .find("test.toml:6: identities.web.issuer.proxy: only http://") != std::string::npos);
    CHECK(error_of(kBase + kSecret + "proxy = \"http://user:pw@p.example:3128\"\n")
              .find("identities.web.issuer.proxy: credentials in the proxy URL are not supported") !=
          std::string::npos);
    CHECK(error_of(kBase + kSecret + "proxy = \"http://p.example:3128/path\"\n").find("proxy URL has no path") !=
          std::string::npos);
    CHECK(error_of(kBase + kSecret + "proxy = \"http://p.example:99999\"\n").find("identities.web.issuer.proxy:") !=
          std::string::npos);
    CHECK(error_of(kBase + kSecret + "proxy = \"\"\n").find("proxy: must not be empty") != std::string::npos);
    CHECK(error_of(kBase + kSecret + "proxy = 3128\n")
              .find("test.toml:6: identities.web.issuer.proxy: must be a string") != std::string::npos);
    CHECK(error_of(kBase + kSecret + "no_proxy = \"a;b\"\n")
              .find("test.toml:6: identities.web.issuer.no_proxy: expected") != std::string::npos);
    CHECK(error_of(kBase + kSecret + "no_proxy = [\"a\"]\n").find("no_proxy: must be a string") != std::string::npos);
}
