#include "agent/systemd.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/unique_fd.hpp"

namespace keyward::agent {
namespace {

constexpr int kListenFdsStart = 3;  // SD_LISTEN_FDS_START

std::optional<long long> env_number(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v) return std::nullopt;
    char* end = nullptr;
    errno = 0;
    long long n = std::strtoll(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < 0) return std::nullopt;
    return n;
}

std::vector<std::string> split(std::string_view text, char sep) {
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t i = 0; i <= text.size(); ++i) {
        if (i == text.size() || text[i] == sep) {
            out.emplace_back(text.substr(start, i - start));
            start = i + 1;
        }
    }
    return out;
}

}  // namespace

Notifier Notifier::from_environment() {
    Notifier n;
    if (const char* s = std::getenv("NOTIFY_SOCKET"); s && (s[0] == '/' || s[0] == '@')) n.socket_ = s;
    const auto usec = env_number("WATCHDOG_USEC");
    const auto pid = env_number("WATCHDOG_PID");
    if (usec && *usec > 0 && (!pid || *pid == ::getpid())) n.watchdog_ = std::chrono::microseconds(*usec / 2);
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    return n;
}

void Notifier::send(std::string_view state) const noexcept {
    if (socket_.empty()) return;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_.size() >= sizeof addr.sun_path) return;
    std::memcpy(addr.sun_path, socket_.data(), socket_.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_.size());
    if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return;
    (void)!::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len);
}

std::optional<InheritedSocket> inherited_socket(std::string_view name) {
    const auto pid = env_number("LISTEN_PID");
    const auto count = env_number("LISTEN_FDS");
    const char* names_env = std::getenv("LISTEN_FDNAMES");
    const std::vector<std::string> names = names_env ? split(names_env, ':') : std::vector<std::string>{};
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    if (!pid || !count || *pid != ::getpid() || *count == 0) return std::nullopt;

    int chosen = -1;
    for (long long i = 0; i < *count; ++i)
        if (static_cast<size_t>(i) < names.size() && names[static_cast<size_t>(i)] == name)
            chosen = kListenFdsStart + int(i);
    if (chosen < 0 && *count == 1) chosen = kListenFdsStart;  // one socket, whatever its name
    // Every passed descriptor is ours now: keep none of the others open across exec.
    for (long long i = 0; i < *count; ++i) ::fcntl(kListenFdsStart + int(i), F_SETFD, FD_CLOEXEC);
    if (chosen < 0)
        return InheritedSocket{-1, "systemd passed " + std::to_string(*count) + " sockets, none named \"" +
                                       std::string(name) + "\" (FileDescriptorName=)"};

    int type = 0, listening = 0;
    sockaddr_un addr{};
    socklen_t tl = sizeof type, ll = sizeof listening, al = sizeof addr;
    if (::getsockopt(chosen, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 ||
        ::getsockopt(chosen, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) != 0 ||
        ::getsockname(chosen, reinterpret_cast<sockaddr*>(&addr), &al) != 0 || addr.sun_family != AF_UNIX ||
        type != SOCK_STREAM || !listening)
        return InheritedSocket{-1, "the socket systemd passed is not a listening Unix stream socket"};
    ::fcntl(chosen, F_SETFL, ::fcntl(chosen, F_GETFL) | O_NONBLOCK);
    return InheritedSocket{chosen, {}};
}

}  // namespace keyward::agent
