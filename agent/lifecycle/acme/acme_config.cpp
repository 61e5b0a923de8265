#include "agent/lifecycle/acme/acme_config.hpp"

#include <optional>
#include <set>

#include "agent/lifecycle/acme/http01_server.hpp"
#include "agent/lifecycle/acme/http_message.hpp"
#include "agent/lifecycle/table_errors.hpp"
#include "core/key_types.hpp"

namespace keyward::acme {

namespace {

const std::set<std::string> kKeys = {
    "kind",    "directory",       "ca_file",   "account_key",   "account_key_type", "account_key_token",
    "contact", "agree_terms",     "challenge", "http01_listen", "dns01_hook",       "dns01_wait",
    "timeout", "request_timeout", "proxy",     "no_proxy"};

// "90s", "5m", "1h30m", or an integer number of seconds: the duration syntax of the rest of
// the identity table.
std::optional<int64_t> seconds_of(const toml::node& node) {
    if (node.is_integer()) return *node.value<int64_t>();
    if (!node.is_string()) return std::nullopt;
    std::string text = *node.value<std::string>();
    if (text.empty() || text.size() > 32) return std::nullopt;
    int64_t total = 0;
    size_t i = 0;
    while (i < text.size()) {
        if (text[i] < '0' || text[i] > '9') return std::nullopt;
        int64_t n = 0;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
            n = n * 10 + (text[i++] - '0');
            if (n > 1000000) return std::nullopt;
        }
        if (i == text.size()) return std::nullopt;  // "90" as a string: unit required
        switch (text[i++]) {
            case 's': total += n; break;
            case 'm': total += n * 60; break;
            case 'h': total += n * 3600; break;
            case 'd': total += n * 86400; break;
            default: return std::nullopt;
        }
    }
    return total;
}

// libcurl's list: host names, domains, IP addresses or CIDR ranges separated by commas,
// or "*". An empty string means "no exceptions" (the environment's no_proxy is not used).
Status check_no_proxy(const toml::node& v) {
    if (!v.is_string()) return {ErrorCode::invalid_argument, "must be a string"};
    const std::string text = *v.value<std::string>();
    for (char ch : text) {
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  std::string_view(".-:,/*[] _").find(ch) != std::string_view::npos;
        if (!ok)
            return {ErrorCode::invalid_argument,
                    "expected host names, domains or addresses separated by commas, e.g. \"localhost,.internal\""};
    }
    return Status::success();
}

using Checker = lifecycle::TableErrors;

}  // namespace

Status check_acme_config(const toml::table& table, const std::string& source, const std::string& prefix) {
    Checker c(source, prefix);
    for (auto&& [k, v] : table) {
        std::string key(k.str());
        if (!kKeys.count(key)) return c.error(k.source(), key, "unknown key for an ACME issuer");
        // `node` rather than the binding itself: lambdas may not capture structured bindings
        // before C++20 compilers caught up (clang 14, which builds the fuzz targets).
        const toml::node& node = v;
        auto want_string = [&c, &node, &key]() -> Status {
            if (!node.is_string()) return c.error(node.source(), key, "must be a string");
            if (node.value<std::string>()->empty()) return c.error(node.source(), key, "must not be empty");
            return Status::success();
        };
        if (key == "kind") {
            if (!v.is_string() || *v.value<std::string>() != "acme")
                return c.error(v.source(), key, "must be \"acme\"");
        } else if (key == "directory") {
            if (Status s = want_string(); !s.ok()) return s;
            Result<Url> url = parse_url(*v.value<std::string>());
            if (!url.ok()) return c.error(v.source(), key, url.status().message);
        } else if (key == "ca_file" || key == "account_key" || key == "account_key_token" || key == "http01_listen") {
            if (Status s = want_string(); !s.ok()) return s;
            std::string text = *v.value<std::string>();
            if (key == "ca_file" && text.front() != '/') return c.error(v.source(), key, "must be an absolute path");
            if (key == "http01_listen") {
                std::string host;
                uint16_t port = 0;
                if (!split_host_port(text, host, port))
                    return c.error(v.source(), key,
                                   "expected \"address:port\", e.g. \"127.0.0.1:5002\" or \"[::1]:80\"");
            }
        } else if (key == "proxy") {
            if (Status s = want_string(); !s.ok()) return s;
            Result<Url> url = parse_url(*v.value<std::string>(), {"http"});
            if (!url.ok()) return c.error(v.source(), key, url.status().message + " (expected \"http://host:port\")");
        } else if (key == "no_proxy") {
            if (Status s = check_no_proxy(v); !s.ok()) return c.error(v.source(), key, s.message);
        } else if (key == "account_key_type") {
            if (!v.is_string() || !key_type_from_name(*v.value<std::string>()))
                return c.error(v.source(), key, "must be one of " + key_type_names());
        } else if (key == "contact" || key == "dns01_hook") {
            const toml::array* arr = v.as_array();
            if (!arr) return c.error(v.source(), key, "must be a list of strings");
            for (const toml::node& item : *arr)
                if (!item.is_string() || item.value<std::string>()->empty())
                    return c.error(item.source(), key, "must be a list of non-empty strings");
            if (key == "dns01_hook") {
                if (arr->empty()) return c.error(v.source(), key, "must name a command");
                if ((*arr)[0].value<std::string>()->front() != '/')
                    return c.error(v.source(), key, "the command must be an absolute path (no shell is used)");
            } else {
                for (const toml::node& item : *arr)
                    if (item.value<std::string>()->rfind("mailto:", 0) != 0)
                        return c.error(item.source(), key, "each contact must be a mailto: URL");
            }
        } else if (key == "agree_terms") {
            if (!v.is_boolean()) return c.error(v.source(), key, "must be true or false");
        } else if (key == "challenge") {
            if (!v.is_string() || (*v.value<std::string>() != "http-01" && *v.value<std::string>() != "dns-01"))
                return c.error(v.source(), key, "must be \"http-01\" or \"dns-01\"");
        } else if (key == "timeout" || key == "request_timeout" || key == "dns01_wait") {
            std::optional<int64_t> secs = seconds_of(v);
            if (!secs) return c.error(v.source(), key, "must be a duration (\"90s\", \"5m\", \"1h\") or whole seconds");
            int64_t n = *secs;
            int64_t lo = key == "dns01_wait" ? 0 : 1;
            if (n < lo || n > 3600)
                return c.error(v.source(), key, "must be between " + std::to_string(lo) + " and 3600 seconds");
        }
    }
    if (!table.contains("kind")) return c.error(table.source(), "kind", "missing (must be \"acme\")");
    if (!table.contains("directory"))
        return c.error(table.source(), "directory", "missing (the ACME directory URL, e.g. https://acme.example/dir)");
    std::string challenge = table["challenge"].value_or<std::string>("http-01");
    if (challenge == "http-01" && !table.contains("http01_listen"))
        return c.error(table.source(), "http01_listen",
                       "missing (the address keyward serves http-01 answers on, e.g. \"0.0.0.0:80\")");
    if (challenge == "dns-01" && !table.contains("dns01_hook"))
        return c.error(table.source(), "dns01_hook", "missing (the command that publishes the TXT record)");
    if (table.contains("timeout") && table.contains("request_timeout") &&
        seconds_of(*table["request_timeout"].node()) > seconds_of(*table["timeout"].node()))
        return c.error(table["request_timeout"].node()->source(), "request_timeout", "must not exceed timeout");
    return Status::success();
}

AcmeConfig read_acme_config(const toml::table& table) {
    AcmeConfig cfg;
    cfg.directory = table["directory"].value_or<std::string>("");
    cfg.ca_file = table["ca_file"].value_or<std::string>("");
    cfg.account_key = table["account_key"].value_or<std::string>("acme-account");
    cfg.account_key_type = table["account_key_type"].value_or<std::string>("ec-p256");
    cfg.account_key_token = table["account_key_token"].value_or<std::string>("");
    cfg.agree_terms = table["agree_terms"].value_or(true);
    cfg.challenge = table["challenge"].value_or<std::string>("http-01");
    cfg.http01_listen = table["http01_listen"].value_or<std::string>("");
    if (auto proxy = table["proxy"].value<std::string>()) cfg.proxy = *proxy;
    if (auto no_proxy = table["no_proxy"].value<std::string>()) cfg.no_proxy = *no_proxy;
    if (const toml::array* a = table["contact"].as_array())
        for (const toml::node& n : *a) cfg.contact.push_back(n.value_or<std::string>(""));
    if (const toml::array* a = table["dns01_hook"].as_array())
        for (const toml::node& n : *a) cfg.dns01_hook.push_back(n.value_or<std::string>(""));
    auto seconds = [&](const char* key, int64_t fallback) {
        const toml::node* n = table.get(key);
        return std::chrono::seconds(n ? seconds_of(*n).value_or(fallback) : fallback);
    };
    cfg.dns01_wait = seconds("dns01_wait", 0);
    cfg.timeout = seconds("timeout", 300);
    cfg.request_timeout = seconds("request_timeout", 30);
    if (cfg.request_timeout > cfg.timeout) cfg.request_timeout = cfg.timeout;
    return cfg;
}

}  // namespace keyward::acme
