#include "agent/config.hpp"

#include <grp.h>
#include <pwd.h>

#include <fstream>
#include <sstream>

#include <toml++/toml.h>

#include "agent/lifecycle/issuers.hpp"
#include "agent/metrics_http.hpp"
#include "core/durations.hpp"

namespace keyward::agent {
namespace {

// Collects the location of the first problem and stops the walk there.
class Reader {
public:
    explicit Reader(const std::string& source) : source_(source) {}

    Status fail(const toml::source_region& where, std::string_view key, std::string_view what) const {
        std::string loc = source_.empty() ? std::string("<config>") : source_;
        if (where.begin.line > 0) loc += ":" + std::to_string(where.begin.line);
        return {ErrorCode::invalid_argument, loc + ": " + std::string(key) + ": " + std::string(what)};
    }

    Status string(const toml::node& n, std::string_view key, std::string& out) const {
        if (!n.is_string()) return fail(n.source(), key, "expected a string");
        out = *n.value<std::string>();
        return {};
    }

    // One user or group, by name or numeric id.
    Status principal(const toml::node& item, std::string_view key, bool users, unsigned& out) const {
        if (auto id = item.value<int64_t>(); id && item.is_integer()) {
            if (*id < 0 || *id > 0x7fffffff) return fail(item.source(), key, "id out of range");
            out = static_cast<unsigned>(*id);
            return {};
        }
        if (!item.is_string()) return fail(item.source(), key, "expected a name or a numeric id");
        std::string name = *item.value<std::string>();
        if (users) {
            const passwd* pw = ::getpwnam(name.c_str());
            if (!pw) return fail(item.source(), key, "unknown user '" + name + "'");
            out = pw->pw_uid;
        } else {
            const group* gr = ::getgrnam(name.c_str());
            if (!gr) return fail(item.source(), key, "unknown group '" + name + "'");
            out = gr->gr_gid;
        }
        return {};
    }

    Status principals(const toml::node& n, std::string_view key, bool users, std::vector<unsigned>& out) const {
        const toml::array* arr = n.as_array();
        if (!arr) return fail(n.source(), key, "expected an array of names or numeric ids");
        for (const toml::node& item : *arr) {
            unsigned id = 0;
            Status s = principal(item, key, users, id);
            if (!s.ok()) return s;
            out.push_back(id);
        }
        return {};
    }

    Status users_and_groups(const toml::key& k, const toml::node& v, std::string_view prefix, Principals& p,
                            bool& handled) const {
        handled = true;
        std::string key = std::string(prefix) + std::string(k.str());
        std::vector<unsigned> ids;
        if (k.str() == "allow_users" || k.str() == "admin_users") {
            Status s = principals(v, key, true, ids);
            p.users.insert(p.users.end(), ids.begin(), ids.end());
            return s;
        }
        if (k.str() == "allow_groups" || k.str() == "admin_groups") {
            Status s = principals(v, key, false, ids);
            p.groups.insert(p.groups.end(), ids.begin(), ids.end());
            return s;
        }
        handled = false;
        return {};
    }

    Status count(const toml::node& v, const std::string& key, int64_t min, int64_t max, int64_t& out) const {
        auto n = v.value<int64_t>();
        if (!v.is_integer() || !n || *n < min || *n > max)
            return fail(v.source(), key,
                        "expected a whole number from " + std::to_string(min) + " to " + std::to_string(max));
        out = *n;
        return {};
    }

    // A number of seconds, or a duration such as "30s" or "10m"; from 1 s to one day.
    Status seconds(const toml::node& v, const std::string& key, int64_t& out) const {
        std::optional<int64_t> n;
        if (v.is_integer()) n = v.value<int64_t>();
        else if (v.is_string()) n = parse_duration(*v.value<std::string>());
        if (!n || *n < 1 || *n > 86400)
            return fail(v.source(), key, "expected seconds or a duration (\"30s\", \"10m\") from 1 s to 1 day");
        out = *n;
        return {};
    }

    Status agent(const toml::table& t, AgentConfig& c) const {
        for (auto&& [k, v] : t) {
            std::string key = "agent." + std::string(k.str());
            Status s;
            bool handled = false;
            if (k.str() == "socket") s = string(v, key, c.socket);
            else if (k.str() == "state_dir") s = string(v, key, c.state_dir);
            else if (k.str() == "default_token") s = string(v, key, c.default_token);
            else if (k.str() == "log_level") s = string(v, key, c.log_level);
            else if (k.str() == "seal_embedded_pin") s = string(v, key, c.seal_embedded_pin);
            else if (k.str() == "socket_mode") {
                std::string text;
                s = string(v, key, text);
                if (s.ok()) {
                    char* end = nullptr;
                    unsigned long mode = std::strtoul(text.c_str(), &end, 8);
                    if (text.empty() || *end != '\0' || mode > 0777)
                        s = fail(v.source(), key, "expected an octal mode such as \"0660\"");
                    else c.socket_mode = static_cast<mode_t>(mode);
                }
            } else if (k.str() == "socket_group") {
                unsigned gid = 0;
                s = principal(v, key, false, gid);
                if (s.ok()) c.socket_group = gid;
            } else if (k.str() == "max_connections" || k.str() == "max_connections_per_uid") {
                int64_t n = 0;
                s = count(v, key, 1, 1000000, n);
                if (s.ok()) (k.str() == "max_connections" ? c.max_connections : c.max_connections_per_uid) = size_t(n);
            } else if (k.str() == "event_loops") {
                int64_t n = 0;
                s = count(v, key, 0, 64, n);
                if (s.ok()) c.event_loops = size_t(n);
            } else if (k.str() == "read_timeout" || k.str() == "idle_timeout" || k.str() == "audit_interval") {
                int64_t n = 0;
                s = seconds(v, key, n);
                if (s.ok())
                    (k.str() == "read_timeout"   ? c.read_timeout_seconds
                     : k.str() == "idle_timeout" ? c.idle_timeout_seconds
                                                 : c.audit_interval_seconds) = int(n);
            } else if (k.str() == "metrics_listen") {
                s = string(v, key, c.metrics_listen);
                if (s.ok()) {
                    auto split = metrics::split_listen(c.metrics_listen);
                    if (!split.ok()) s = fail(v.source(), key, split.status().message);
                }
            } else if (k.str() == "metrics_file") {
                s = string(v, key, c.metrics_file);
                if (s.ok() && (c.metrics_file.empty() || c.metrics_file.front() != '/'))
                    s = fail(v.source(), key,
                             "expected an absolute path, e.g. \"/var/lib/node_exporter/keyward.prom\"");
            } else if (k.str() == "metrics_interval") {
                int64_t n = 0;
                s = seconds(v, key, n);
                if (s.ok()) c.metrics_interval_seconds = int(n);
            } else if (k.str() == "audit") {
                std::string mode;
                s = string(v, key, mode);
                if (s.ok() && mode != "summary" && mode != "every-signature")
                    s = fail(v.source(), key, "expected \"summary\" or \"every-signature\"");
                if (s.ok()) c.audit_every_signature = mode == "every-signature";
            } else if (k.str() == "admin_users" || k.str() == "admin_groups") {
                s = users_and_groups(k, v, "agent.", c.admins, handled);
            } else if (k.str() == "allow_users" || k.str() == "allow_groups") {
                s = users_and_groups(k, v, "agent.", c.default_allow, handled);
            } else {
                s = fail(k.source(), key, "unknown setting");
            }
            if (!s.ok()) return s;
        }
        return {};
    }

    Status token(std::string_view name, const toml::node& node, AgentConfig& c) const {
        const toml::table* t = node.as_table();
        std::string prefix = "tokens." + std::string(name);
        if (!t) return fail(node.source(), prefix, "expected a table");
        TokenConfig tc;
        tc.name = name;
        for (auto&& [k, v] : *t) {
            std::string key = prefix + "." + std::string(k.str());
            Status s;
            if (k.str() == "kind") s = string(v, key, tc.kind);
            else if (k.str() == "module") s = string(v, key, tc.module);
            else if (k.str() == "uri") s = string(v, key, tc.uri);
            else if (k.str() == "pin_file") s = string(v, key, tc.pin_file);
            else if (k.str() == "tcti") s = string(v, key, tc.tcti);
            else if (k.str() == "key_dir") s = string(v, key, tc.key_dir);
            else if (k.str() == "auth_file") s = string(v, key, tc.auth_file);
            else if (k.str() == "reader") s = string(v, key, tc.reader);
            else if (k.str() == "card") {
                if (auto b = v.value<bool>(); v.is_boolean() && b) tc.card = *b;
                else s = fail(v.source(), key, "expected true or false");
            } else if (k.str() == "card_timeout") {
                int64_t n = 0;
                s = seconds(v, key, n);
                if (s.ok()) tc.card_timeout_seconds = int(n);
            } else if (k.str() == "sessions") {
                auto n = v.value<int64_t>();
                if (!v.is_integer() || !n || *n < 1 || *n > 256)
                    s = fail(v.source(), key, "expected an integer from 1 to 256");
                else tc.sessions = static_cast<size_t>(*n);
            } else {
                s = fail(k.source(), key, "unknown setting");
            }
            if (!s.ok()) return s;
        }
        if (tc.kind.empty()) return fail(node.source(), prefix + ".kind", "missing (\"pkcs11\" or \"tpm\")");
        if (tc.kind == "pkcs11") {
            if (tc.module.empty())
                return fail(node.source(), prefix + ".module", "missing (path of the PKCS#11 module)");
            if (tc.uri.empty()) return fail(node.source(), prefix + ".uri", "missing (e.g. \"pkcs11:token=LABEL\")");
            if (!tc.reader.empty() && !tc.card)
                return fail(node.source(), prefix + ".reader", "only for smartcards (add card = true)");
            if (tc.card && tc.sessions == 0) tc.sessions = 1;  // cards do one thing at a time
        } else if (tc.kind == "tpm") {
            if (tc.tcti.empty()) tc.tcti = "device:/dev/tpmrm0";
        } else {
            return fail(node.source(), prefix + ".kind",
                        "unsupported kind '" + tc.kind + "' (expected \"pkcs11\" or \"tpm\")");
        }
        c.tokens.push_back(std::move(tc));
        return {};
    }

    Status key(std::string_view name, const toml::node& node, AgentConfig& c) const {
        const toml::table* t = node.as_table();
        std::string prefix = "keys." + std::string(name);
        if (!t) return fail(node.source(), prefix, "expected a table");
        if (!is_valid_key_name(name))
            return fail(node.source(), prefix, "invalid key name (letters, digits, '.', '_', '-'; at most 64)");
        KeyConfig kc;
        kc.name = name;
        for (auto&& [k, v] : *t) {
            std::string key = prefix + "." + std::string(k.str());
            Status s;
            bool handled = false;
            if (k.str() == "token") s = string(v, key, kc.token);
            else if (k.str() == "object") s = string(v, key, kc.object);
            else if (k.str() == "allow_users" || k.str() == "allow_groups")
                s = users_and_groups(k, v, prefix + ".", kc.allow, handled);
            else s = fail(k.source(), key, "unknown setting");
            if (!s.ok()) return s;
        }
        c.keys.push_back(std::move(kc));
        return {};
    }

    Status document(const toml::table& root, AgentConfig& c) const {
        for (auto&& [k, v] : root) {
            Status s;
            if (k.str() == "agent") {
                if (!v.is_table()) return fail(v.source(), "agent", "expected a table");
                s = agent(*v.as_table(), c);
            } else if (k.str() == "tokens" || k.str() == "keys") {
                if (!v.is_table()) return fail(v.source(), k.str(), "expected a table of tables");
                for (auto&& [name, sub] : *v.as_table()) {
                    s = k.str() == "tokens" ? token(name.str(), sub, c) : key(name.str(), sub, c);
                    if (!s.ok()) return s;
                }
            } else if (k.str() == "identities") {
                if (!v.is_table()) return fail(v.source(), "identities", "expected a table of tables");
                auto ids = lifecycle::parse_identities(*v.as_table(), source_, lifecycle::built_in_issuer_kinds());
                if (!ids.ok()) return ids.status();
                c.identities = std::move(ids).value();
            } else {
                s = fail(k.source(), k.str(), "unknown section (expected agent, tokens, keys or identities)");
            }
            if (!s.ok()) return s;
        }
        if (!c.default_token.empty()) {
            bool found = false;
            for (const auto& t : c.tokens) found |= t.name == c.default_token;
            if (!found && !(c.tokens.empty() && c.default_token == kEmbeddedTokenName))
                return fail(root.source(), "agent.default_token", "no token named '" + c.default_token + "'");
        }
        for (const auto& kc : c.keys) {
            if (kc.token.empty()) {
                if (!kc.object.empty())
                    return fail(root.source(), "keys." + kc.name + ".object",
                                "needs token = \"NAME\" (where the key is)");
                continue;
            }
            bool found = kc.token == kEmbeddedTokenName && c.tokens.empty();
            for (auto& t : c.tokens) {
                if (t.name != kc.token) continue;
                found = true;
                if (!kc.object.empty()) {
                    if (t.kind != "pkcs11")
                        return fail(root.source(), "keys." + kc.name + ".object",
                                    "adoption by object URI needs a pkcs11 token ('" + t.name + "' is " + t.kind + ")");
                    if (kc.object.rfind("pkcs11:", 0) != 0)
                        return fail(root.source(), "keys." + kc.name + ".object",
                                    "expected an RFC 7512 URI such as \"pkcs11:id=%01\"");
                    t.adopted.emplace_back(kc.name, kc.object);
                }
            }
            if (!found) return fail(root.source(), "keys." + kc.name + ".token", "no token named '" + kc.token + "'");
        }
        return {};
    }

private:
    std::string source_;
};

}  // namespace

const KeyConfig* AgentConfig::key(std::string_view name) const {
    for (const auto& k : keys)
        if (k.name == name) return &k;
    return nullptr;
}

bool is_valid_key_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > 64 || name.front() == '.' || name.front() == '-') return false;
    for (char ch : name) {
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                  ch == '_' || ch == '-';
        if (!ok) return false;
    }
    return true;
}

Result<AgentConfig> parse_config(std::string_view text, const std::string& source) {
    AgentConfig config;
    config.source = source;
    Reader reader(source);
    try {
        toml::table root = toml::parse(text, source);
        Status s = reader.document(root, config);
        if (!s.ok()) return s;
    } catch (const toml::parse_error& e) {
        return Status{ErrorCode::invalid_argument,
                      source + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description())};
    }
    return config;
}

Result<AgentConfig> load_config(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status{ErrorCode::invalid_argument, path + ": cannot read the configuration file"};
    std::ostringstream text;
    text << in.rdbuf();
    return parse_config(text.str(), path);
}

}  // namespace keyward::agent
