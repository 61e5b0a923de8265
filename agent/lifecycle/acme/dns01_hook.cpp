#include "agent/lifecycle/acme/dns01_hook.hpp"

#include <algorithm>

#include "agent/lifecycle/subprocess.hpp"

namespace keyward::acme {

Status run_dns01_hook(const std::vector<std::string>& argv, const std::string& action, const std::string& domain,
                      const std::string& txt, std::chrono::milliseconds timeout) {
    if (argv.empty()) return {ErrorCode::invalid_argument, "dns01_hook is empty"};
    std::vector<std::string> env = {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "KEYWARD_ACME_ACTION=" + action,
        "KEYWARD_ACME_DOMAIN=" + domain,
        "KEYWARD_ACME_RECORD=_acme-challenge." + domain,
        "KEYWARD_ACME_TXT=" + txt,
    };
    // The hook's exit status is its answer; what it prints goes to our log (stderr), capped.
    const int64_t seconds = std::max<int64_t>(1, (timeout.count() + 999) / 1000);
    const lifecycle::CommandOutcome outcome = lifecycle::run_command(argv, env, seconds, 64 * 1024);
    if (!outcome.started)
        return {ErrorCode::invalid_argument, "dns01_hook " + argv[0] + ": cannot run (" + outcome.error + ")"};
    if (outcome.timed_out)
        return {ErrorCode::timeout, "dns01_hook " + argv[0] + " (" + action + ") did not finish in time"};
    if (outcome.exit_code == 0) return Status::success();
    std::string said = outcome.err.substr(0, std::min(outcome.err.find('\n'), size_t{200}));
    return {ErrorCode::device_error, "dns01_hook " + argv[0] + " (" + action + ") " +
                                         lifecycle::describe_outcome(outcome, seconds) +
                                         (said.empty() ? "" : " (" + said + ")")};
}

}  // namespace keyward::acme
