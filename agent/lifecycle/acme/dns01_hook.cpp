#include "agent/lifecycle/acme/dns01_hook.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

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
    std::vector<char*> cargv, cenv;
    for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    for (const std::string& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
    cenv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    // The hook talks to people through its exit status and our log, not our stdin/stdout.
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, cargv[0], &actions, &attr, cargv.data(), cenv.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        return {ErrorCode::invalid_argument, "dns01_hook " + argv[0] + ": cannot run (" + std::strerror(rc) + ")"};

    auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) return {ErrorCode::internal, std::string("waitpid: ") + std::strerror(errno)};
        if (std::chrono::steady_clock::now() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return {ErrorCode::timeout, "dns01_hook " + argv[0] + " (" + action + ") did not finish in time"};
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::success();
    std::string how = WIFEXITED(status) ? "exited with " + std::to_string(WEXITSTATUS(status))
                                        : "was killed by signal " + std::to_string(WTERMSIG(status));
    return {ErrorCode::device_error, "dns01_hook " + argv[0] + " (" + action + ") " + how};
}

}  // namespace keyward::acme
