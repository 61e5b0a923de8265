#include "agent/lifecycle/cmp/cmp_config.hpp"

#include <openssl/err.h>
#include <openssl/http.h>

#include <cctype>
#include <optional>
#include <set>

#include "core/durations.hpp"
#include "agent/lifecycle/table_errors.hpp"
#include "pki/csr.hpp"

namespace keyward::cmp {

namespace {

const std::set<std::string> kKeys = {
    "kind",          "server",          "trusted",       "server_cert", "recipient",        "reference",
    "secret_file",   "bootstrap_cert",  "bootstrap_key", "digest",      "implicit_confirm", "timeout",
    "total_timeout", "poll_inline_max", "proxy",         "no_proxy",    "tls_trusted",      "tls_client_auth"};

using Checker = lifecycle::TableErrors;

bool valid_key_name(const std::string& name) {
    if (name.empty() || name.size() > 64 || name[0] == '.') return false;
    for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
    return true;
}

// OpenSSL's URL parser queues an error for text it refuses; ours says it better, and a
// stale entry would be blamed later for an unrelated OpenSSL failure on this thread.
int parse_url_quietly(const std::string& text, int* ssl, char** user, char** host, char** port, int* portnum,
                      char** path) {
    ERR_set_mark();
    const int ok = OSSL_HTTP_parse_url(text.c_str(), ssl, user, host, port, portnum, path, nullptr, nullptr);
    ERR_pop_to_mark();
    return ok;
}

Status parse_server(const std::string& text, CmpConfig& out) {
    char *host = nullptr, *port = nullptr, *path = nullptr;
    int ssl = 0, portnum = 0;
    if (parse_url_quietly(text, &ssl, nullptr, &host, &port, &portnum, &path) != 1)
        return {ErrorCode::invalid_argument, "not a URL (expected http[s]://HOST[:PORT][/PATH])"};
    Status result;
    if (text.rfind("http://", 0) != 0 && text.rfind("https://", 0) != 0)
        result = {ErrorCode::invalid_argument, "expected an http:// or https:// URL"};
    out.tls = ssl != 0;
    out.host = host != nullptr ? host : "";
    out.port = portnum;
    out.path = path != nullptr && *path != '\0' ? path : "/";
    OPENSSL_free(host);
    OPENSSL_free(port);
    OPENSSL_free(path);
    if (result.ok() && out.host.empty()) result = {ErrorCode::invalid_argument, "the URL has no host"};
    return result;
}

// OpenSSL takes "[http://]host[:port][/path]" for a proxy; keyward wants the scheme spelt
// out and no credentials in a config file.
Status check_proxy(const std::string& text) {
    char *user = nullptr, *host = nullptr, *path = nullptr;
    int ssl = 0;
    if (parse_url_quietly(text, &ssl, &user, &host, nullptr, nullptr, &path) != 1)
        return {ErrorCode::invalid_argument, "not a URL (expected \"http://host:port\")"};
    Status result;
    if (ssl != 0 || text.rfind("http://", 0) != 0)
        result = {ErrorCode::invalid_argument, "only http:// proxies are supported (expected \"http://host:port\")"};
    else if (user != nullptr && *user != '\0')
        result = {ErrorCode::invalid_argument, "credentials in the proxy URL are not supported"};
    else if (host == nullptr || *host == '\0') result = {ErrorCode::invalid_argument, "the URL has no host"};
    else if (path != nullptr && *path != '\0' && std::string_view(path) != "/")
        result = {ErrorCode::invalid_argument, "a proxy URL has no path (expected \"http://host:port\")"};
    OPENSSL_free(user);
    OPENSSL_free(host);
    OPENSSL_free(path);
    return result;
}

// Server names or addresses separated by commas or spaces (OpenSSL matches them whole).
bool valid_no_proxy(const std::string& text) {
    for (char c : text)
        if (!(std::isalnum(static_cast<unsigned char>(c)) ||
              std::string_view(".-:,[] ").find(c) != std::string_view::npos))
            return false;
    return true;
}

Result<CmpConfig> parse(const toml::table& table, const std::string& source, const std::string& prefix) {
    Checker c(source, prefix);
    CmpConfig out;
    const toml::node* reference_node = nullptr;
    const toml::node* bootstrap_node = nullptr;
    for (auto&& [k, v] : table) {
        const std::string key(k.str());
        if (!kKeys.count(key)) return c.error(k.source(), key, "unknown key for a CMP issuer");
        if (key == "implicit_confirm" || key == "tls_client_auth") {
            if (!v.is_boolean()) return c.error(v.source(), key, "must be true or false");
            (key == "implicit_confirm" ? out.implicit_confirm : out.tls_client_auth) = *v.value<bool>();
            continue;
        }
        if (key == "timeout" || key == "total_timeout" || key == "poll_inline_max") {
            std::optional<int64_t> seconds;
            if (v.is_integer()) seconds = *v.value<int64_t>();
            else if (v.is_string()) seconds = parse_duration(*v.value<std::string>());
            if (!seconds || *seconds < 0 || *seconds > 86400)
                return c.error(v.source(), key, "expected a duration up to a day (\"30s\", \"2m\")");
            if (key != "poll_inline_max" && *seconds == 0) return c.error(v.source(), key, "must not be zero");
            (key == "timeout"         ? out.timeout
             : key == "total_timeout" ? out.total_timeout
                                      : out.poll_inline_max) = std::chrono::seconds(*seconds);
            continue;
        }
        if (!v.is_string()) return c.error(v.source(), key, "must be a string");
        const std::string text = *v.value<std::string>();
        if (key == "no_proxy") {  // may be empty: no exceptions, whatever the environment says
            if (!valid_no_proxy(text))
                return c.error(
                    v.source(), key,
                    "expected server names or addresses separated by commas, e.g. \"localhost,ca.internal\"");
            out.no_proxy = text;
            continue;
        }
        if (text.empty()) return c.error(v.source(), key, "must not be empty");
        if (key == "kind") {
            if (text != "cmp") return c.error(v.source(), key, "must be \"cmp\"");
        } else if (key == "server") {
            out.server = text;
            if (Status s = parse_server(text, out); !s.ok()) return c.error(v.source(), key, s.message);
        } else if (key == "trusted" || key == "server_cert" || key == "secret_file" || key == "bootstrap_cert" ||
                   key == "tls_trusted") {
            if (text.front() != '/') return c.error(v.source(), key, "must be an absolute path");
            (key == "trusted"       ? out.trusted
             : key == "server_cert" ? out.server_cert
             : key == "secret_file" ? out.secret_file
             : key == "tls_trusted" ? out.tls_trusted
                                    : out.bootstrap_cert) = text;
        } else if (key == "recipient") {
            if (auto name = pki::parse_subject(text); !name.ok() || name->empty())
                return c.error(v.source(), key, "expected a name like \"/CN=CMP RA\"");
            out.recipient = text;
        } else if (key == "reference") {
            out.reference = text;
            reference_node = &v;
        } else if (key == "bootstrap_key") {
            if (!valid_key_name(text)) return c.error(v.source(), key, "not a valid key name");
            out.bootstrap_key = text;
            bootstrap_node = &v;
        } else if (key == "proxy") {
            if (Status s = check_proxy(text); !s.ok()) return c.error(v.source(), key, s.message);
            out.proxy = text;
        } else if (key == "digest") {
            if (text != "sha256" && text != "sha384" && text != "sha512")
                return c.error(v.source(), key, "expected sha256, sha384 or sha512");
            out.digest = text;
        }
    }
    const auto& where = table.source();
    if (out.server.empty()) return c.error(where, "server", "missing (the CMP server's http:// or https:// URL)");
    if (out.tls && out.tls_trusted.empty())
        return c.error(where, "tls_trusted", "missing: an https:// server's certificate is checked against it");
    if (!out.tls && !out.tls_trusted.empty()) return c.error(where, "tls_trusted", "only for an https:// server");
    if (!out.tls && out.tls_client_auth) return c.error(where, "tls_client_auth", "only for an https:// server");
    if (out.tls && out.proxy)
        return c.error(where, "proxy", "not supported with an https:// server (use http://, or no proxy)");
    if (out.trusted.empty() && out.server_cert.empty())
        return c.error(where, "trusted",
                       "missing: the server's answers are checked against `trusted` (CA "
                       "certificates) or a pinned `server_cert`");
    if (out.reference.empty() != out.secret_file.empty())
        return c.error(
            reference_node ? reference_node->source() : where, out.reference.empty() ? "reference" : "secret_file",
            "reference and secret_file go together (the shared secret's identifier and the file holding it)");
    if (out.bootstrap_cert.empty() != out.bootstrap_key.empty())
        return c.error(bootstrap_node ? bootstrap_node->source() : where,
                       out.bootstrap_cert.empty() ? "bootstrap_cert" : "bootstrap_key",
                       "bootstrap_cert and bootstrap_key go together (the certificate and its device key)");
    if (!out.has_secret() && !out.has_bootstrap())
        return c.error(where, "",
                       "needs a credential for the initial request: reference + secret_file (shared "
                       "secret) or bootstrap_cert + bootstrap_key");
    if (out.has_secret() && out.has_bootstrap())
        return c.error(where, "", "give either a shared secret or a bootstrap certificate, not both");
    if (out.poll_inline_max > out.total_timeout)
        return c.error(where, "poll_inline_max", "must not exceed total_timeout");
    return out;
}

}  // namespace

Status check_cmp_config(const toml::table& table, const std::string& source, const std::string& prefix) {
    auto parsed = parse(table, source, prefix);
    return parsed.ok() ? Status::success() : parsed.status();
}

CmpConfig read_cmp_config(const toml::table& table) {
    auto parsed = parse(table, "", "issuer");
    return parsed.ok() ? parsed.value() : CmpConfig{};
}

}  // namespace keyward::cmp
