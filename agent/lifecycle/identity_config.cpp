// Strict parsing of [identities.NAME]: every key known, every value checked, every error
// naming file:line and the key.
#include "agent/lifecycle/identity_config.hpp"

#include <sstream>

#include "core/durations.hpp"
#include "core/key_types.hpp"

namespace keyward::lifecycle {
namespace {

class Checker {
public:
    Checker(std::string source, std::string prefix) : source_(std::move(source)), prefix_(std::move(prefix)) {}

    Status fail(const toml::node& where, std::string_view key, std::string_view what) const {
        return fail_at(where.source(), key, what);
    }
    Status fail_at(const toml::source_region& where, std::string_view key, std::string_view what) const {
        std::string loc = source_.empty() ? std::string("<config>") : source_;
        if (where.begin.line > 0) loc += ":" + std::to_string(where.begin.line);
        std::string full = prefix_;
        if (!key.empty()) full += "." + std::string(key);
        return {ErrorCode::invalid_argument, loc + ": " + full + ": " + std::string(what)};
    }

    Status string(const toml::node& n, std::string_view key, std::string& out) const {
        if (!n.is_string()) return fail(n, key, "expected a string");
        out = *n.value<std::string>();
        return {};
    }
    Status boolean(const toml::node& n, std::string_view key, bool& out) const {
        if (!n.is_boolean()) return fail(n, key, "expected true or false");
        out = *n.value<bool>();
        return {};
    }
    Status strings(const toml::node& n, std::string_view key, std::vector<std::string>& out) const {
        const toml::array* arr = n.as_array();
        if (!arr) return fail(n, key, "expected an array of strings");
        for (const toml::node& item : *arr) {
            if (!item.is_string()) return fail(item, key, "expected an array of strings");
            out.push_back(*item.value<std::string>());
        }
        return {};
    }
    // A duration: "90s", "6h", "7d", or an integer number of seconds.
    Status duration(const toml::node& n, std::string_view key, int64_t& out, bool allow_zero = false) const {
        std::optional<int64_t> v;
        if (n.is_integer()) {
            v = *n.value<int64_t>();
            if (*v < 0) v.reset();
        } else if (n.is_string()) {
            v = parse_duration(*n.value<std::string>());
        }
        if (!v) return fail(n, key, "expected a duration like \"90s\", \"15m\", \"6h\" or \"7d\"");
        if (*v == 0 && !allow_zero) return fail(n, key, "must be longer than 0s");
        out = *v;
        return {};
    }
    // An absolute program path (no shell: the first element is executed as is).
    Status program(const toml::node& n, std::string_view key, const std::vector<std::string>& argv) const {
        if (argv.empty()) return fail(n, key, "expected a program and its arguments, e.g. [\"/usr/bin/prog\"]");
        if (argv.front().empty() || argv.front().front() != '/')
            return fail(n, key, "the program must be an absolute path (it is run without a shell): " + argv.front());
        return {};
    }

    const std::string& source() const { return source_; }
    const std::string& prefix() const { return prefix_; }

private:
    std::string source_;
    std::string prefix_;
};

bool valid_name(std::string_view name) {
    if (name.empty() || name.size() > 64 || name.front() == '.' || name.front() == '-') return false;
    for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
    return true;
}

Status parse_issuer(const Checker& id, const toml::node& node, const IssuerKinds& kinds, IssuerConfig& out) {
    const toml::table* table = node.as_table();
    if (!table) return id.fail(node, "issuer", "expected a table ([identities.NAME.issuer])");
    Checker c(id.source(), id.prefix() + ".issuer");
    const toml::node* kind = table->get("kind");
    if (!kind) return c.fail_at(table->source(), "", "missing kind (\"helper\", \"acme\" or \"cmp\")");
    if (auto s = c.string(*kind, "kind", out.kind); !s.ok()) return s;
    out.table = *table;
    for (const auto& k : kinds)
        if (out.kind == k.name) return k.check(*table, id.source(), c.prefix());
    if (out.kind != "helper") {
        std::string expected = "helper";
        for (const auto& k : kinds) expected += ", " + k.name;
        return c.fail(*kind, "kind", "unknown issuer kind \"" + out.kind + "\" (expected " + expected + ")");
    }

    bool have_command = false;
    for (const auto& [k, v] : *table) {
        const std::string key(k.str());
        Status s;
        if (key == "kind") {
            continue;
        } else if (key == "command") {
            have_command = true;
            s = c.strings(v, key, out.command);
            if (s.ok()) s = c.program(v, key, out.command);
        } else if (key == "timeout") {
            s = c.duration(v, key, out.timeout);
        } else if (key == "profile") {
            s = c.string(v, key, out.profile);
        } else if (key == "environment") {
            const toml::table* env = v.as_table();
            if (!env) {
                s = c.fail(v, key, "expected a table of NAME = \"value\"");
            } else {
                for (const auto& [ek, ev] : *env) {
                    std::string value;
                    s = c.string(ev, key + "." + std::string(ek.str()), value);
                    if (!s.ok()) break;
                    const std::string name(ek.str());
                    if (name.rfind("CERTMONGER_OPERATION", 0) == 0 || name == "CERTMONGER_CSR" ||
                        name == "CERTMONGER_CA_COOKIE" || name == "CERTMONGER_CERTIFICATE") {
                        s = c.fail(ev, key + "." + name, "set by keywardd itself");
                        break;
                    }
                    out.environment[name] = value;
                }
            }
        } else {
            s = c.fail_at(k.source(), key, "unknown key (expected kind, command, timeout, profile or environment)");
        }
        if (!s.ok()) return s;
    }
    if (!have_command) return c.fail_at(table->source(), "command", "missing (the helper program and its arguments)");
    return {};
}

// renew_at / renew_before / jitter are mutually constrained; collected first, then checked.
struct PolicyKeys {
    const toml::node* renew_at = nullptr;
    const toml::node* renew_before = nullptr;
};

Status parse_jitter(const Checker& c, const toml::node& v, RenewalPolicy& policy) {
    if (v.is_string()) {
        const std::string text = *v.value<std::string>();
        if (auto pct = parse_percent(text)) {
            if (*pct >= 0.5) return c.fail(v, "jitter", "at most 50% of the lifetime");
            policy.jitter_fraction = *pct;
            policy.jitter_seconds.reset();
            return {};
        }
    }
    int64_t seconds = 0;
    if (auto s = c.duration(v, "jitter", seconds, true); !s.ok())
        return c.fail(v, "jitter", "expected a percentage of the lifetime (\"5%\") or a duration (\"1h\", \"0s\")");
    policy.jitter_seconds = seconds;
    return {};
}

}  // namespace

Result<std::shared_ptr<const IdentityConfig>> parse_identity(const std::string& name, const toml::table& table,
                                                             const std::string& source, const IssuerKinds& kinds) {
    Checker c(source, "identities." + name);
    if (!valid_name(name))
        return c.fail_at(table.source(), "",
                         "identity names use letters, digits, '-', '_' and '.' (not first), at most 64");
    auto cfg = std::make_shared<IdentityConfig>();
    cfg->name = name;
    cfg->source = source;
    cfg->key = name;
    PolicyKeys policy_keys;
    bool have_issuer = false;

    for (const auto& [k, v] : table) {
        const std::string key(k.str());
        Status s;
        if (key == "key") {
            s = c.string(v, key, cfg->key);
            if (s.ok() && !valid_name(cfg->key)) s = c.fail(v, key, "not a valid key name");
        } else if (key == "key_type") {
            s = c.string(v, key, cfg->key_type);
            if (s.ok() && !key_type_from_name(cfg->key_type))
                s = c.fail(v, key, "unknown key type \"" + cfg->key_type + "\" (" + key_type_names() + ")");
        } else if (key == "token") {
            s = c.string(v, key, cfg->token);
        } else if (key == "subject") {
            s = c.string(v, key, cfg->subject);
            if (s.ok()) {
                auto parsed = pki::parse_subject(cfg->subject);
                if (!parsed.ok()) s = c.fail(v, key, parsed.status().message);
                else cfg->subject_attributes = std::move(parsed.value());
            }
        } else if (key == "sans") {
            s = c.strings(v, key, cfg->sans);
            for (size_t i = 0; s.ok() && i < cfg->sans.size(); ++i) {
                auto san = pki::parse_san(cfg->sans[i]);
                if (!san.ok()) s = c.fail(v, key, san.status().message);
                else cfg->san_values.push_back(std::move(san.value()));
            }
        } else if (key == "trust_anchors") {
            s = c.string(v, key, cfg->trust_anchors);
            if (s.ok() && (cfg->trust_anchors.empty() || cfg->trust_anchors.front() != '/'))
                s = c.fail(v, key, "expected the absolute path of a PEM file with the CA certificates");
        } else if (key == "require_client_auth") {
            s = c.boolean(v, key, cfg->require_client_auth);
        } else if (key == "renew_at") {
            policy_keys.renew_at = &v;
            double f = 0;
            if (v.is_string()) f = parse_fraction(*v.value<std::string>()).value_or(0.0);
            else if (v.is_floating_point()) f = *v.value<double>();
            if (!(f > 0 && f < 1))
                s = c.fail(v, key, "expected a fraction of the lifetime between 0 and 1, e.g. \"2/3\" or \"66%\"");
            else cfg->policy.renew_fraction = f;
        } else if (key == "renew_before") {
            policy_keys.renew_before = &v;
            int64_t d = 0;
            s = c.duration(v, key, d);
            if (s.ok()) cfg->policy.renew_before = d;
        } else if (key == "jitter") {
            s = parse_jitter(c, v, cfg->policy);
        } else if (key == "retry_min") {
            s = c.duration(v, key, cfg->policy.retry_min);
        } else if (key == "retry_max") {
            s = c.duration(v, key, cfg->policy.retry_max);
        } else if (key == "rekey") {
            s = c.boolean(v, key, cfg->rekey);
        } else if (key == "grace_period") {
            s = c.duration(v, key, cfg->grace_period, true);
        } else if (key == "revocation_check_interval") {
            s = c.duration(v, key, cfg->revocation_check_interval, true);
        } else if (key == "dir") {
            s = c.string(v, key, cfg->dir);
            if (s.ok() && !cfg->dir.empty() && cfg->dir.front() != '/') s = c.fail(v, key, "expected an absolute path");
        } else if (key == "hooks" || key == "notify") {
            auto& programs = key == "hooks" ? cfg->hooks : cfg->notify;
            const toml::array* arr = v.as_array();
            if (!arr) s = c.fail(v, key, "expected an array of programs (\"/path\") or of argv arrays");
            for (size_t i = 0; s.ok() && arr && i < arr->size(); ++i) {
                const toml::node& item = *arr->get(i);
                std::vector<std::string> argv;
                if (item.is_string()) argv.push_back(*item.value<std::string>());
                else s = c.strings(item, key, argv);
                if (s.ok()) s = c.program(item, key, argv);
                if (s.ok()) programs.push_back(std::move(argv));
            }
        } else if (key == "notify_before") {
            const toml::array* arr = v.as_array();
            if (!arr) s = c.fail(v, key, "expected an array of durations, e.g. [\"7d\", \"1d\"]");
            cfg->notify_before.clear();
            for (size_t i = 0; s.ok() && arr && i < arr->size(); ++i) {
                int64_t d = 0;
                s = c.duration(*arr->get(i), key, d);
                if (s.ok()) cfg->notify_before.push_back(d);
            }
        } else if (key == "reload_units") {
            s = c.strings(v, key, cfg->reload_units);
            for (const auto& unit : cfg->reload_units)
                if (s.ok() && (unit.empty() || unit.front() == '-' || unit.find('/') != std::string::npos))
                    s = c.fail(v, key, "not a unit name: \"" + unit + "\"");
        } else if (key == "auto_enroll") {
            s = c.boolean(v, key, cfg->auto_enroll);
        } else if (key == "issuer") {
            have_issuer = true;
            s = parse_issuer(c, v, kinds, cfg->issuer);
        } else {
            s = c.fail_at(k.source(), key,
                          "unknown key (expected key, key_type, token, subject, sans, trust_anchors, "
                          "require_client_auth, renew_at, renew_before, jitter, retry_min, retry_max, rekey, "
                          "grace_period, revocation_check_interval, dir, hooks, reload_units, notify, notify_before, "
                          "auto_enroll or issuer)");
        }
        if (!s.ok()) return s;
    }
    if (policy_keys.renew_at && policy_keys.renew_before)
        return c.fail(*policy_keys.renew_before, "renew_before", "give renew_at or renew_before, not both");
    if (cfg->policy.retry_max < cfg->policy.retry_min)
        return c.fail_at(table.source(), "retry_max", "shorter than retry_min");
    if (cfg->subject.empty())
        return c.fail_at(table.source(), "subject", "missing (e.g. subject = \"/CN=" + name + "\")");
    if (cfg->trust_anchors.empty())
        return c.fail_at(table.source(), "trust_anchors",
                         "missing: the PEM file of the CA certificates every issued certificate must chain to");
    if (!have_issuer)
        return c.fail_at(table.source(), "issuer", "missing ([identities." + name + ".issuer] with a kind)");

    std::ostringstream canon;
    canon << name << '\n' << table;
    cfg->fingerprint = canon.str();
    return std::shared_ptr<const IdentityConfig>(std::move(cfg));
}

bool same_identity_config(const IdentityConfig& a, const IdentityConfig& b) { return a.fingerprint == b.fingerprint; }

Result<std::vector<std::shared_ptr<const IdentityConfig>>> parse_identities(const toml::table& section,
                                                                            const std::string& source,
                                                                            const IssuerKinds& kinds) {
    std::vector<std::shared_ptr<const IdentityConfig>> out;
    std::vector<toml::source_region> where;
    for (const auto& [k, v] : section) {
        const std::string name(k.str());
        const toml::table* table = v.as_table();
        if (!table) {
            Checker c(source, "identities." + name);
            return c.fail(v, "", "expected a table ([identities." + name + "])");
        }
        auto parsed = parse_identity(name, *table, source, kinds);
        if (!parsed.ok()) return parsed.status();
        out.push_back(std::move(parsed.value()));
        where.push_back(table->source());
    }
    // Two identities on one key would renew it under each other's feet.
    for (size_t i = 0; i < out.size(); ++i)
        for (size_t j = i + 1; j < out.size(); ++j)
            if (out[i]->key == out[j]->key)
                return Checker(source, "identities." + out[j]->name)
                    .fail_at(where[j], "key",
                             "key \"" + out[j]->key + "\" already belongs to identity " + out[i]->name);
    return out;
}

}  // namespace keyward::lifecycle
