#include "core/secret_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace keyward::files {

Result<UniqueFd> open_secret(const std::string& path, std::string_view what) {
    const std::string name = std::string(what) + " " + path;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd) return Status{ErrorCode::device_unavailable, "cannot read " + name + ": " + std::strerror(errno)};
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return Status{ErrorCode::device_unavailable, "cannot read " + name + ": " + std::strerror(errno)};
    if (!S_ISREG(st.st_mode)) return Status{ErrorCode::access_denied, name + " is not a regular file"};
    const uid_t me = ::geteuid();
    if (st.st_uid != 0 && st.st_uid != me)
        return Status{ErrorCode::access_denied, name + " is owned by uid " + std::to_string(st.st_uid) +
                                                    ", not by root or the agent's user (uid " + std::to_string(me) +
                                                    "); fix: chown " + std::to_string(me) + " " + path};
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return Status{ErrorCode::access_denied,
                      name + " can be read by other users (mode " + mode + "); fix: chmod 600 " + path};
    }
    return fd;
}

}  // namespace keyward::files
