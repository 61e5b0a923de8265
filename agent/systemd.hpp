// keywardd under systemd, spoken directly (the protocols are small and this keeps the
// agent free of libsystemd): readiness, status and watchdog pings to $NOTIFY_SOCKET
// (sd_notify(3)), and the listening socket passed by socket activation (LISTEN_PID,
// LISTEN_FDS, LISTEN_FDNAMES; sd_listen_fds_with_names(3)). Without systemd both are inert.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace keyward::agent {

class Notifier {
public:
    // Reads NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID, then removes them from the
    // environment so that helpers and hooks do not inherit them.
    static Notifier from_environment();

    bool enabled() const noexcept { return !socket_.empty(); }
    // One datagram, e.g. "READY=1\nSTATUS=serving 3 keys"; errors are ignored (systemd gone).
    void send(std::string_view state) const noexcept;
    // How often to send WATCHDOG=1 (half of what systemd asked); nullopt: no watchdog.
    std::optional<std::chrono::microseconds> watchdog_interval() const noexcept { return watchdog_; }

private:
    std::string socket_;  // a path, or "@name" for the abstract namespace
    std::optional<std::chrono::microseconds> watchdog_;
};

// The listening socket systemd passed for `name` (FileDescriptorName=, default "agent"),
// or the only one passed when it has no name. Set CLOEXEC and non-blocking; LISTEN_* are
// removed from the environment. nullopt when not socket-activated; an error text when
// something was passed but is not a listening Unix stream socket.
struct InheritedSocket {
    int fd = -1;
    std::string error;
};
std::optional<InheritedSocket> inherited_socket(std::string_view name = "agent");

}  // namespace keyward::agent
