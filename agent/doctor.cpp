#include "agent/doctor.hpp"

#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "agent/credentials.hpp"
#include "agent/lifecycle/identity_config.hpp"
#include "agent/lifecycle/state.hpp"
#include "agent/lifecycle/store.hpp"
#include "agent/state_dir.hpp"
#include "core/durable_file.hpp"
#include "core/durations.hpp"
#include "core/unique_fd.hpp"
#include "pki/certificates.hpp"

namespace keyward::agent {
namespace {

constexpr int kConnectTimeoutMs = 3000;

std::string octal(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", unsigned(mode & 07777));
    return buf;
}

struct Checks {
    std::vector<Check> list;
    void ok(std::string area, std::string name, std::string message) {
        list.push_back({std::move(area), std::move(name), CheckLevel::ok, std::move(message), {}});
    }
    void warn(std::string area, std::string name, std::string message, std::string fix) {
        list.push_back({std::move(area), std::move(name), CheckLevel::warning, std::move(message), std::move(fix)});
    }
    void fail(std::string area, std::string name, std::string message, std::string fix) {
        list.push_back({std::move(area), std::move(name), CheckLevel::failure, std::move(message), std::move(fix)});
    }
    void skip(std::string area, std::string name, std::string message) {
        list.push_back({std::move(area), std::move(name), CheckLevel::skipped, std::move(message), {}});
    }
};

// "message; fix" as secure_state_dir words it.
std::pair<std::string, std::string> split_fix(const std::string& text) {
    size_t at = text.find("; ");
    if (at == std::string::npos) return {text, ""};
    return {text.substr(0, at), text.substr(at + 2)};
}

void check_state_dir(Checks& c, const AgentConfig& config) {
    struct stat st {};
    if (::lstat(config.state_dir.c_str(), &st) != 0) {
        c.fail("state_dir", config.state_dir, std::string("cannot stat: ") + std::strerror(errno),
               "create it (mode 0700, owned by the agent's user) or start keywardd once, which creates it");
        return;
    }
    if (Status s = secure_state_dir(config.state_dir, ::geteuid()); !s.ok()) {
        auto [what, fix] = split_fix(s.message);
        c.fail("state_dir", config.state_dir, what, fix.empty() ? "chmod 0700 " + config.state_dir : fix);
        return;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        c.warn("state_dir", config.state_dir, "readable by others (mode " + octal(st.st_mode) + ")",
               "chmod 0700 " + config.state_dir);
    else
        c.ok("state_dir", config.state_dir,
             "owned by uid " + std::to_string(st.st_uid) + ", mode " + octal(st.st_mode));
}

void check_secret_file(Checks& c, const std::string& token, const std::string& setting, const std::string& what) {
    auto path = secret_file_path(setting, what);
    if (!path.ok()) {
        c.fail("token", token, path.status().message, "fix " + what + " in the configuration");
        return;
    }
    auto text = files::read_file(path.value(), 4096);
    if (!text.ok()) {
        c.fail("token", token, what + " " + path.value() + " cannot be read: " + text.status().message,
               "create it with the token's user PIN on one line, mode 0600, owned by the agent's user");
        return;
    }
    const std::string& pin = text.value();
    if (pin.find_first_not_of("\r\n") == std::string::npos) {
        c.fail("token", token, what + " " + path.value() + " is empty",
               "write the token's user PIN to it (one line), then `systemctl reload keywardd`");
        return;
    }
    struct stat st {};
    if (::stat(path.value().c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
        c.warn("token", token, what + " " + path.value() + " is readable by others (mode " + octal(st.st_mode) + ")",
               "chmod 0600 " + path.value());
    else c.ok("token", token, what + " " + path.value() + " readable");
}

void check_tokens(Checks& c, const AgentConfig& config, const std::shared_ptr<KeyRegistry>& registry) {
    std::vector<TokenConfig> tokens = config.tokens;
    if (registry)  // the live set (the embedded token's configuration is made at start)
        for (const auto& t : registry->tokens())
            if (std::none_of(tokens.begin(), tokens.end(), [&](const TokenConfig& tc) { return tc.name == t->name; }))
                tokens.push_back(t->config);
    if (tokens.empty()) {
        c.ok("token", std::string(kEmbeddedTokenName), "embedded SoftHSM2 token in " + config.state_dir);
        return;
    }
    for (const auto& tc : tokens) {
        if (tc.kind == "pkcs11") {
            if (::access(tc.module.c_str(), R_OK) != 0)
                c.fail("token", tc.name, "PKCS#11 module " + tc.module + " cannot be read: " + std::strerror(errno),
                       "install the module or fix tokens." + tc.name + ".module");
            if (!tc.pin_file.empty()) check_secret_file(c, tc.name, tc.pin_file, "PIN file");
        } else if (tc.kind == "tpm" && !tc.auth_file.empty()) {
            check_secret_file(c, tc.name, tc.auth_file, "auth file");
        }
        if (!registry) {
            c.skip("token", tc.name, "login not checked without the agent");
            continue;
        }
        auto t = registry->token(tc.name);
        if (!t) {
            c.fail("token", tc.name, "the agent could not open it (its log says why)",
                   "check the device and the token's settings, then `systemctl reload keywardd`");
            continue;
        }
        const auto health = t->health.load();
        const std::string desc = t->backend->description();
        switch (health) {
            case DeviceHealth::present: c.ok("token", tc.name, "present, logged in: " + desc); break;
            case DeviceHealth::needs_pin:
                c.fail("token", tc.name, "the device refused the login (" + desc + ")",
                       "put the right user PIN in the PIN file, then `systemctl reload keywardd`");
                break;
            case DeviceHealth::locked:
                c.fail("token", tc.name, "the user PIN is blocked: the device refuses it for good (" + desc + ")",
                       "unblock the PIN with the security officer's PIN or the card's tool (e.g. `pkcs11-tool "
                       "--unlock-pin`), then `systemctl reload keywardd`");
                break;
            case DeviceHealth::removed:
                c.fail("token", tc.name, "the device is not present (" + desc + ")", "insert or connect the device");
                break;
            case DeviceHealth::error:
                c.fail("token", tc.name, "the device reports errors (" + desc + ")",
                       "see the agent's log; restart the device service (pcscd, tpm2-abrmd) if it has one");
                break;
        }
    }
}

std::string principals_text(const Principals& p) {
    std::string out;
    for (uid_t u : p.users) {
        const passwd* pw = ::getpwuid(u);
        out += (out.empty() ? "" : ", ") + (pw ? std::string(pw->pw_name) : "uid " + std::to_string(u));
    }
    for (gid_t g : p.groups) {
        const group* gr = ::getgrgid(g);
        out += (out.empty() ? "" : ", ") + std::string("group ") + (gr ? std::string(gr->gr_name) : std::to_string(g));
    }
    return out;
}

void check_keys(Checks& c, const AgentConfig& config, const std::shared_ptr<KeyRegistry>& registry) {
    for (const auto& k : config.keys) {
        const std::string who = principals_text(k.allow);
        if (registry && !registry->find(k.name)) {
            c.fail("key", k.name, "configured in [keys." + k.name + "] but on no token",
                   "create it (keyward keys create " + k.name + ") or remove [keys." + k.name + "]");
            continue;
        }
        if (who.empty())
            c.warn("key", k.name, "no allow_users or allow_groups: only root and the agent's user may sign",
                   "add allow_users/allow_groups to [keys." + k.name + "] for the services that use it");
        else c.ok("key", k.name, "may sign: " + who);
    }
    if (registry) {
        const size_t unlisted = registry->keys().size();
        const std::string who = principals_text(config.default_allow);
        c.ok("key", "*",
             std::to_string(unlisted) + " keys on the tokens; keys without [keys.NAME] may be used by " +
                 (who.empty() ? std::string("root and the agent's user only") : who));
    }
}

// Splits "scheme://host[:port]/..." into host and port (default by scheme).
bool url_host_port(const std::string& url, std::string& host, std::string& port) {
    size_t s = url.find("://");
    if (s == std::string::npos) return false;
    const std::string scheme = url.substr(0, s);
    std::string rest = url.substr(s + 3);
    rest = rest.substr(0, rest.find_first_of("/?#"));
    if (size_t at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
    if (!rest.empty() && rest.front() == '[') {
        size_t close = rest.find(']');
        if (close == std::string::npos) return false;
        host = rest.substr(1, close - 1);
        port = close + 2 <= rest.size() && rest[close + 1] == ':' ? rest.substr(close + 2) : "";
    } else {
        size_t colon = rest.rfind(':');
        host = rest.substr(0, colon);
        port = colon == std::string::npos ? "" : rest.substr(colon + 1);
    }
    if (port.empty()) port = scheme == "https" ? "443" : "80";
    return !host.empty();
}

// Empty when something accepted a TCP connection within the timeout, else why not.
std::string tcp_probe(const std::string& host, const std::string& port) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
        return "cannot resolve " + host + ": " + ::gai_strerror(rc);
    std::string why = "no address";
    for (addrinfo* a = res; a; a = a->ai_next) {
        UniqueFd fd(::socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd) continue;
        if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            why = std::strerror(errno);
            continue;
        }
        pollfd p{fd.get(), POLLOUT, 0};
        if (::poll(&p, 1, kConnectTimeoutMs) != 1) {
            why = "no answer within " + std::to_string(kConnectTimeoutMs / 1000) + " s";
            continue;
        }
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) {
            ::freeaddrinfo(res);
            return {};
        }
        why = std::strerror(err);
    }
    ::freeaddrinfo(res);
    return why;
}

void check_issuer(Checks& c, const lifecycle::IdentityConfig& cfg) {
    const auto& kind = cfg.issuer.kind;
    const char* setting = kind == "acme" ? "directory" : kind == "cmp" ? "server" : nullptr;
    if (!setting) {
        c.skip("identity", cfg.name, "issuer: a " + kind + " issuer cannot be probed");
        return;
    }
    auto url = cfg.issuer.table[setting].value<std::string>();
    std::string host, port;
    if (!url || !url_host_port(*url, host, port)) {
        c.fail("identity", cfg.name, std::string("issuer: no usable ") + setting + " URL",
               "fix identities." + cfg.name + ".issuer." + setting);
        return;
    }
    if (std::string why = tcp_probe(host, port); !why.empty())
        c.fail("identity", cfg.name, "issuer " + *url + " unreachable: " + why,
               "check that the CA runs and that this host reaches " + host + ":" + port +
                   " (firewall, proxy, DNS); renewals fail until it does");
    else c.ok("identity", cfg.name, "issuer " + *url + " accepts connections");
}

void check_identity(Checks& c, const AgentConfig& config, const lifecycle::IdentityConfig& cfg,
                    const std::shared_ptr<KeyRegistry>& registry, int64_t now) {
    const std::string dir = cfg.dir.empty() ? config.state_dir + "/identities/" + cfg.name : cfg.dir;
    lifecycle::IdentityStore store(dir);
    auto state = lifecycle::load_state(dir + "/state.json");
    const auto current = store.current();
    if (!current) {
        c.warn("identity", cfg.name, "not enrolled (no certificate yet)",
               cfg.auto_enroll
                   ? "the agent enrolls it by itself; see its last attempt with keyward identities show " + cfg.name
                   : "keyward enroll " + cfg.name);
    } else {
        auto info = pki::describe_pem(current->cert_pem);
        if (!info.ok()) {
            c.fail("identity", cfg.name, "certificate unreadable: " + info.status().message,
                   "keyward renew " + cfg.name + " --now");
        } else {
            const int64_t left = info->not_after - now;
            if (left <= 0)
                c.fail("identity", cfg.name, "certificate expired at " + format_time(info->not_after),
                       "keyward renew " + cfg.name + " --now (and fix what made the renewals fail)");
            else
                c.ok("identity", cfg.name,
                     "certificate valid until " + format_time(info->not_after) + " (" + format_duration(left) +
                         " left)");
            // The certificate against its device key (live) and the trust anchors.
            pki::Expectations expect;
            expect.trust_anchors = cfg.trust_anchors;
            expect.require_client_auth = cfg.require_client_auth;
            expect.sans = cfg.san_values;
            expect.now = std::max<int64_t>(now, info->not_before);  // expiry is reported above
            expect.now = std::min<int64_t>(expect.now, info->not_after - 1);
            std::shared_ptr<const KeyEntry> key = registry ? registry->find(current->meta.key) : nullptr;
            expect.spki = key ? key->info.spki : info->spki;
            if (registry && !key) {
                c.fail(
                    "identity", cfg.name, "its device key " + current->meta.key + " is on no token",
                    "reconnect the token, or re-enroll with a new key: keyward renew " + cfg.name + " --now --rekey");
            } else if (cfg.trust_anchors.empty()) {
                c.skip("identity", cfg.name, "chain not checked (no trust_anchors)");
            } else if (auto valid = pki::validate_issued(current->cert_pem, current->chain_pem, expect); !valid.ok()) {
                c.fail("identity", cfg.name, "certificate check: " + valid.status().message,
                       "keyward renew " + cfg.name + " --now" + (key ? "" : " --rekey"));
            } else {
                c.ok("identity", cfg.name,
                     std::string(registry ? "certificate matches device key " + current->meta.key + ", " : "") +
                         "chains to " + cfg.trust_anchors);
            }
        }
    }
    if (!state.ok()) {
        c.fail("identity", cfg.name, "state unreadable: " + state.status().message,
               "move " + dir + "/state.json aside; the agent starts a fresh one");
    } else if (const auto& a = state->last_attempt; a.time > 0) {
        const std::string text = "last attempt " + format_time(a.time) + ": " + a.outcome +
                                 (a.message.empty() ? "" : " (" + a.message + ")");
        if (state->failures > 0)
            c.warn("identity", cfg.name, text + "; " + std::to_string(state->failures) + " failures in a row",
                   "fix the cause above, then keyward renew " + cfg.name + " --now");
        else c.ok("identity", cfg.name, text);
    }
    check_issuer(c, cfg);
}

void check_clock(Checks& c, int64_t now) {
    // The build date is a floor: a clock before it is certainly wrong (certificates would
    // all look not yet valid).
    std::tm built{};
    strptime(__DATE__, "%b %d %Y", &built);
    const int64_t floor = int64_t(timegm(&built));
    if (now < floor)
        c.fail("clock", "system",
               "the clock says " + format_time(now) + ", before this build (" + format_time(floor) + ")",
               "set the time (timedatectl set-ntp true)");
    else c.ok("clock", "system", "the clock says " + format_time(now));
}

// Whether `uid` (with `gids`) may traverse to and connect to `path`.
std::string reach(const std::string& path, uid_t uid, const std::vector<gid_t>& gids) {
    auto allowed = [&](const struct stat& st, mode_t owner, mode_t grp, mode_t other) {
        if (uid == 0) return true;
        if (st.st_uid == uid) return (st.st_mode & owner) != 0;
        if (std::find(gids.begin(), gids.end(), st.st_gid) != gids.end()) return (st.st_mode & grp) != 0;
        return (st.st_mode & other) != 0;
    };
    std::filesystem::path p(path);
    for (auto dir = p.parent_path(); !dir.empty(); dir = dir.parent_path()) {
        struct stat st {};
        if (::stat(dir.c_str(), &st) != 0) return "cannot stat " + dir.string();
        if (!allowed(st, S_IXUSR, S_IXGRP, S_IXOTH))
            return "may not enter " + dir.string() + " (mode " + octal(st.st_mode) + ")";
        if (dir == dir.root_path()) break;
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return "no socket at " + path;
    if (!allowed(st, S_IWUSR, S_IWGRP, S_IWOTH)) return "may not connect (socket mode " + octal(st.st_mode) + ")";
    return {};
}

void check_socket(Checks& c, const AgentConfig& config, bool live) {
    if (!live) {
        c.skip("socket", config.socket.empty() ? std::string("(default)") : config.socket,
               "reachability not checked without the agent");
        return;
    }
    // Everyone the configuration names (their own gids come from the user database).
    std::vector<std::pair<std::string, std::pair<uid_t, std::vector<gid_t>>>> principals;
    auto add_user = [&](uid_t u) {
        const passwd* pw = ::getpwuid(u);
        std::vector<gid_t> gids;
        if (pw) {
            int n = 64;
            gids.resize(size_t(n));
            if (::getgrouplist(pw->pw_name, pw->pw_gid, gids.data(), &n) < 0) {
                gids.resize(size_t(n));
                ::getgrouplist(pw->pw_name, pw->pw_gid, gids.data(), &n);
            }
            gids.resize(size_t(std::max(n, 0)));
        }
        principals.push_back({pw ? std::string(pw->pw_name) : "uid " + std::to_string(u), {u, gids}});
    };
    auto add_group = [&](gid_t g) {
        const group* gr = ::getgrgid(g);
        // A member of the group who owns nothing: uid -1 matches no owner.
        principals.push_back({"group " + (gr ? std::string(gr->gr_name) : std::to_string(g)), {uid_t(-1), {g}}});
    };
    std::vector<const Principals*> sets = {&config.admins, &config.default_allow};
    for (const auto& k : config.keys) sets.push_back(&k.allow);
    for (const auto* s : sets) {
        for (uid_t u : s->users)
            if (std::none_of(principals.begin(), principals.end(), [&](auto& p) { return p.second.first == u; }))
                add_user(u);
        for (gid_t g : s->groups) add_group(g);
    }
    const std::string& path = config.socket;
    if (principals.empty()) {
        const std::string why = reach(path, ::geteuid(), {});
        if (why.empty()) c.ok("socket", path, "reachable (no other users or groups are configured)");
        else c.fail("socket", path, why, "restart keywardd to recreate its socket");
        return;
    }
    for (const auto& [name, ids] : principals) {
        if (std::string why = reach(path, ids.first, ids.second); !why.empty())
            c.fail("socket", path, name + " " + why,
                   "give the socket a group they are in (agent.socket_group, socket_mode = \"0660\") and make the "
                   "directories above it traversable");
        else c.ok("socket", path, "reachable by " + name);
    }
}

void check_metrics(Checks& c, const AgentConfig& config) {
    if (config.metrics_file.empty()) return;
    const std::string dir = std::filesystem::path(config.metrics_file).parent_path().string();
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
        c.fail("metrics", config.metrics_file, "its directory " + dir + " is not writable: " + std::strerror(errno),
               "create " + dir + " writable by the agent's user, or change agent.metrics_file");
    else c.ok("metrics", config.metrics_file, "directory writable");
}

const char* level_name(CheckLevel l) {
    switch (l) {
        case CheckLevel::ok: return "ok";
        case CheckLevel::warning: return "warning";
        case CheckLevel::failure: return "failure";
        case CheckLevel::skipped: return "skipped";
    }
    return "failure";
}

}  // namespace

std::vector<Check> run_doctor(const AgentConfig& config, const std::shared_ptr<KeyRegistry>& registry) {
    Checks c;
    const int64_t now = int64_t(std::time(nullptr));
    c.ok("config", config.source.empty() ? std::string("(built-in defaults)") : config.source,
         registry ? "in force in the running agent" : "parsed without errors");
    check_state_dir(c, config);
    check_tokens(c, config, registry);
    check_keys(c, config, registry);
    for (const auto& id : config.identities) check_identity(c, config, *id, registry, now);
    check_clock(c, now);
    check_socket(c, config, registry != nullptr);
    check_metrics(c, config);
    return c.list;
}

std::string doctor_json(const std::vector<Check>& checks) {
    nlohmann::ordered_json doc;
    doc["checks"] = nlohmann::ordered_json::array();
    int counts[4] = {0, 0, 0, 0};
    for (const auto& ch : checks) {
        ++counts[int(ch.level)];
        doc["checks"].push_back({{"area", ch.area},
                                 {"name", ch.name},
                                 {"level", level_name(ch.level)},
                                 {"message", ch.message},
                                 {"fix", ch.fix}});
    }
    doc["ok"] = counts[0];
    doc["warnings"] = counts[1];
    doc["failures"] = counts[2];
    doc["skipped"] = counts[3];
    return doc.dump(2) + "\n";
}

}  // namespace keyward::agent
