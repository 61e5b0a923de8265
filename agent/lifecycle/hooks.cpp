#include "agent/lifecycle/hooks.hpp"

#include <unistd.h>

#include "agent/lifecycle/subprocess.hpp"
#include "core/log.hpp"

namespace keyward::lifecycle {
namespace {

constexpr int64_t kHookTimeout = 120;
constexpr const char* kSystemctl = "/usr/bin/systemctl";

std::string tail_line(const std::string& text) {
    size_t end = text.find_last_not_of(" \t\r\n");
    if (end == std::string::npos) return {};
    size_t start = text.find_last_of('\n', end);
    std::string line =
        text.substr(start == std::string::npos ? 0 : start + 1, end - (start == std::string::npos ? 0 : start + 1) + 1);
    return line.size() > 200 ? line.substr(0, 200) + "..." : line;
}

}  // namespace

Attempt run_hooks(const IdentityConfig& identity, const GenerationFiles& files, const std::string& key, int64_t now) {
    Attempt result{now, "ok", ""};
    if (identity.hooks.empty() && identity.reload_units.empty()) {
        result.outcome = "none";
        return result;
    }
    const std::vector<std::string> env = {
        "KEYWARD_IDENTITY=" + identity.name,    "KEYWARD_CERT=" + files.cert,     "KEYWARD_CHAIN=" + files.chain,
        "KEYWARD_FULLCHAIN=" + files.fullchain, "KEYWARD_KEYREF=" + files.keyref, "KEYWARD_KEY=" + key,
    };
    std::vector<std::string> failures;
    auto run_one = [&](const std::vector<std::string>& argv, const std::string& label) {
        CommandOutcome o = run_command(argv, env, kHookTimeout, 64 * 1024);
        if (o.started && !o.timed_out && !o.truncated && o.signal == 0 && o.exit_code == 0) return;
        std::string why = label + ": " + describe_outcome(o, kHookTimeout);
        if (auto said = tail_line(o.err.empty() ? o.out : o.err); !said.empty()) why += " (" + said + ")";
        log::warning("identity " + identity.name + ": " + why + "; the new certificate stays in force");
        failures.push_back(why);
    };
    for (const auto& hook : identity.hooks) run_one(hook, "hook " + hook.front());
    // Unprivileged (the packaged service), systemctl is refused unless polkit allows it; the
    // failure then names the root-side path unit that does the reload instead.
    const std::string unprivileged_hint =
        ::geteuid() == 0 ? ""
                         : " (the agent is not root: use keyward-reload@" + identity.name + ".path, docs/systemd.md)";
    for (const auto& unit : identity.reload_units)
        run_one({kSystemctl, "reload", "--", unit}, "reload of " + unit + unprivileged_hint);
    if (!failures.empty()) {
        result.outcome = "failed";
        for (const auto& f : failures) result.message += (result.message.empty() ? "" : "; ") + f;
    }
    return result;
}

}  // namespace keyward::lifecycle
