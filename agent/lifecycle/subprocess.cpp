#include "agent/lifecycle/subprocess.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/durations.hpp"
#include "core/unique_fd.hpp"

namespace keyward::lifecycle {
namespace {

bool has_var(const std::vector<std::string>& env, const char* name) {
    const size_t n = std::strlen(name);
    for (const auto& e : env)
        if (e.size() > n && e.compare(0, n, name) == 0 && e[n] == '=') return true;
    return false;
}

}  // namespace

CommandOutcome run_command(const std::vector<std::string>& argv, const std::vector<std::string>& env_in,
                           int64_t timeout_seconds, size_t stdout_cap, const std::atomic<bool>* cancel) {
    CommandOutcome outcome;
    if (argv.empty() || argv.front().empty() || argv.front().front() != '/') {
        outcome.error = "the program must be given by its absolute path";
        return outcome;
    }
    std::vector<std::string> env = env_in;
    if (!has_var(env, "PATH")) env.emplace_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    if (!has_var(env, "LANG")) env.emplace_back("LANG=C.UTF-8");
    // Everything the child needs is prepared before fork: after it only async-signal-safe calls.
    std::vector<char*> cargv, cenv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
    cenv.push_back(nullptr);

    int out_pipe[2], err_pipe[2], exec_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
        outcome.error = std::string("pipe: ") + std::strerror(errno);
        return outcome;
    }
    UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
        outcome.error = std::string("pipe: ") + std::strerror(errno);
        return outcome;
    }
    UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);
    if (::pipe2(exec_pipe, O_CLOEXEC) != 0) {
        outcome.error = std::string("pipe: ") + std::strerror(errno);
        return outcome;
    }
    UniqueFd exec_r(exec_pipe[0]), exec_w(exec_pipe[1]);
    UniqueFd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));

    const pid_t pid = ::fork();
    if (pid < 0) {
        outcome.error = std::string("fork: ") + std::strerror(errno);
        return outcome;
    }
    if (pid == 0) {
        // Child: own process group (so a timeout kills its children too), default signals,
        // stdio wired, nothing else inherited (every other descriptor is CLOEXEC or closed).
        ::setpgid(0, 0);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::signal(SIGPIPE, SIG_DFL);
        if (::dup2(null_fd.get(), 0) < 0 || ::dup2(out_w.get(), 1) < 0 || ::dup2(err_w.get(), 2) < 0) ::_exit(127);
        ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
        // No supplementary groups: the agent may hold `tss` (the TPM) or a token's group,
        // which a helper or hook has no business using. Only a privileged agent can drop
        // them; the unprivileged service's groups are the unit's SupplementaryGroups= (docs/systemd.md).
        if (::geteuid() == 0 && ::setgroups(0, nullptr) != 0) ::_exit(127);
        if (::chdir("/") != 0) ::_exit(127);
        ::execve(cargv[0], cargv.data(), cenv.data());
        const int e = errno;
        (void)!::write(exec_w.get(), &e, sizeof e);
        ::_exit(127);
    }
    ::setpgid(pid, pid);  // both sides, so the group exists before we might kill it
    outcome.started = true;
    out_w.reset();
    err_w.reset();
    exec_w.reset();
    null_fd.reset();

    int exec_errno = 0;
    if (::read(exec_r.get(), &exec_errno, sizeof exec_errno) == static_cast<ssize_t>(sizeof exec_errno)) {
        outcome.started = false;
        outcome.error = std::string(argv.front()) + ": " + std::strerror(exec_errno);
    }

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
    constexpr size_t kErrCap = 16 * 1024;
    char buf[8192];
    while (out_r.valid() || err_r.valid()) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            outcome.timed_out = true;
            break;
        }
        if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
            outcome.cancelled = true;
            break;
        }
        pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
        const int n = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count(), 200)));
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
            if (got <= 0) {
                (i == 0 ? out_r : err_r).reset();
                continue;
            }
            std::string& sink = i == 0 ? outcome.out : outcome.err;
            const size_t cap = i == 0 ? stdout_cap : kErrCap;
            const size_t room = cap > sink.size() ? cap - sink.size() : 0;
            sink.append(buf, std::min(room, static_cast<size_t>(got)));
            if (i == 0 && static_cast<size_t>(got) > room) outcome.truncated = true;
        }
        if (outcome.truncated) break;  // a runaway helper: stop it rather than buffer it
    }
    const bool kill_now = outcome.timed_out || outcome.truncated || outcome.cancelled;
    if (kill_now) ::kill(-pid, SIGKILL);

    int status = 0;
    for (;;) {
        const pid_t r = ::waitpid(pid, &status, kill_now ? 0 : WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) break;
        if (r == 0) {
            // Pipes closed but still running (it closed its stdout): give it the rest of the time.
            const bool stop = cancel != nullptr && cancel->load(std::memory_order_relaxed);
            if (stop) outcome.cancelled = true;
            if (stop || std::chrono::steady_clock::now() >= deadline) {
                if (!stop) outcome.timed_out = true;
                ::kill(-pid, SIGKILL);
                continue;
            }
            ::usleep(20000);
        }
    }
    if (WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) outcome.signal = WTERMSIG(status);
    // A helper's own children must not outlive it holding our pipes or the CA's resources.
    if (outcome.timed_out || outcome.cancelled) ::kill(-pid, SIGKILL);
    return outcome;
}

std::string describe_outcome(const CommandOutcome& outcome, int64_t timeout_seconds) {
    if (!outcome.started) return "could not start: " + outcome.error;
    if (outcome.timed_out) return "timed out after " + format_duration(timeout_seconds) + " (killed)";
    if (outcome.cancelled) return "stopped: the agent is shutting down";
    if (outcome.truncated) return "printed more than the size limit (killed)";
    if (outcome.signal) return "killed by signal " + std::to_string(outcome.signal);
    return "exit code " + std::to_string(outcome.exit_code);
}

}  // namespace keyward::lifecycle
