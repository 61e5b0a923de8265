// Runs a helper or hook program: no shell, a clean environment (only what the caller
// passes, never a PIN), a timeout after which its whole process group is killed, and a cap
// on what it may print.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace keyward::lifecycle {

struct CommandOutcome {
    bool started = false;  // false: fork/exec failed (error says why)
    bool timed_out = false;
    bool cancelled = false;  // killed because the agent is stopping
    int exit_code = -1;      // when it exited normally
    int signal = 0;          // when a signal ended it
    bool truncated = false;  // stdout exceeded the cap
    std::string out;         // stdout (capped)
    std::string err;         // stderr (capped, for logs)
    std::string error;       // why it could not be started
};

// argv[0] must be an absolute path. env entries are "NAME=value"; PATH and LANG are added
// when missing. stdin is /dev/null.
// A raised `cancel` flag ends the program (and its group) like the timeout does.
CommandOutcome run_command(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                           int64_t timeout_seconds, size_t stdout_cap = 1 << 20,
                           const std::atomic<bool>* cancel = nullptr);

// "exit code 3", "killed by signal 9", "timed out after 5s", "could not start: ...".
std::string describe_outcome(const CommandOutcome& outcome, int64_t timeout_seconds);

}  // namespace keyward::lifecycle
