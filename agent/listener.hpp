// The agent's listening Unix socket: created with the configured mode and group, refusing
// to steal the path from another running agent, removed again on shutdown.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "core/result.hpp"

namespace keyward::agent {

class Listener {
public:
    static Result<Listener> open(const std::string& path, mode_t mode, std::optional<gid_t> group);
    // A listening socket someone else made (systemd socket activation): its path is
    // theirs, so it is not removed on shutdown.
    static Listener adopt(int fd);
    Listener() = default;
    Listener(Listener&& other) noexcept;
    Listener& operator=(Listener&& other) noexcept;
    ~Listener();

    int fd() const noexcept { return fd_; }
    const std::string& path() const noexcept { return path_; }

private:
    int fd_ = -1;
    std::string path_;
    bool owns_path_ = true;
};

}  // namespace keyward::agent
