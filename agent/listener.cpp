#include "agent/listener.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace keyward::agent {
namespace {

Status sys_error(const std::string& what) { return {ErrorCode::internal, what + ": " + std::strerror(errno)}; }

// True when something answers on the path: another agent is running there.
bool someone_listens(const sockaddr_un& addr) {
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) return false;
    bool alive = ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    ::close(probe);
    return alive;
}

}  // namespace

Result<Listener> Listener::open(const std::string& path, mode_t mode, std::optional<gid_t> group) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        return Status{ErrorCode::invalid_argument, "socket path is empty or too long: " + path};
    std::memcpy(addr.sun_path, path.data(), path.size());

    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return Status{ErrorCode::invalid_argument, path + " exists and is not a socket; refusing to replace it"};
        if (someone_listens(addr))
            return Status{ErrorCode::invalid_argument, "another agent is already serving " + path};
        ::unlink(path.c_str());  // stale socket of an agent that did not exit cleanly
    }

    Listener l;
    l.fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (l.fd_ < 0) return sys_error("socket");
    // Bind under a tight umask so the socket is never reachable with looser rights.
    mode_t old = ::umask(0177);
    int r = ::bind(l.fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::umask(old);
    if (r != 0) return sys_error("cannot bind " + path);
    l.path_ = path;
    if (group && ::chown(path.c_str(), static_cast<uid_t>(-1), *group) != 0)
        return sys_error("cannot set the group of " + path);
    if (::chmod(path.c_str(), mode) != 0) return sys_error("cannot set the mode of " + path);
    if (::listen(l.fd_, 1024) != 0) return sys_error("listen on " + path);
    return l;
}

Listener Listener::adopt(int fd) {
    Listener l;
    l.fd_ = fd;
    l.owns_path_ = false;
    sockaddr_un addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 && addr.sun_path[0] != '\0')
        l.path_ = addr.sun_path;
    else l.path_ = "(socket from systemd)";
    return l;
}

Listener::Listener(Listener&& other) noexcept
        : fd_(std::exchange(other.fd_, -1)),
          path_(std::exchange(other.path_, {})),
          owns_path_(std::exchange(other.owns_path_, true)) {}

Listener& Listener::operator=(Listener&& other) noexcept {
    if (this != &other) {
        this->~Listener();
        fd_ = std::exchange(other.fd_, -1);
        path_ = std::exchange(other.path_, {});
        owns_path_ = std::exchange(other.owns_path_, true);
    }
    return *this;
}

Listener::~Listener() {
    if (fd_ >= 0) ::close(fd_);
    if (owns_path_ && !path_.empty()) ::unlink(path_.c_str());
    fd_ = -1;
    path_.clear();
}

}  // namespace keyward::agent
