#include "core/durable_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

namespace keyward::files {
namespace {

Status io_error(const std::string& what, const std::string& path) {
    return {ErrorCode::internal, what + " " + path + ": " + std::strerror(errno)};
}

std::string parent_of(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

std::string temp_name(const std::string& path) {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    return path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rng() % 1000000000);
}

Status write_all(int fd, std::string_view data, const std::string& path) {
    size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return io_error("cannot write", path);
        }
        done += static_cast<size_t>(n);
    }
    return {};
}

}  // namespace

Status fsync_dir(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return io_error("cannot open directory", dir);
    const int r = ::fsync(fd);
    ::close(fd);
    if (r != 0) return io_error("cannot fsync directory", dir);
    return {};
}

Status write_new(const std::string& path, std::string_view data, unsigned mode) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) return io_error("cannot create", path);
    Status s = write_all(fd, data, path);
    if (s.ok() && ::fchmod(fd, mode) != 0) s = io_error("cannot chmod", path);
    if (s.ok() && ::fsync(fd) != 0) s = io_error("cannot fsync", path);
    ::close(fd);
    return s;
}

Status write_atomic(const std::string& path, std::string_view data, unsigned mode) {
    const std::string tmp = temp_name(path);
    Status s = write_new(tmp, data, mode);
    if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = io_error("cannot rename into", path);
    if (!s.ok()) {
        ::unlink(tmp.c_str());
        return s;
    }
    return fsync_dir(parent_of(path));
}

Status publish_new(const std::string& path, std::string_view data, unsigned mode) {
    const std::string tmp = temp_name(path);
    if (Status s = write_new(tmp, data, mode); !s.ok()) {
        ::unlink(tmp.c_str());
        return s;
    }
    const int linked = ::link(tmp.c_str(), path.c_str());
    const int err = errno;
    ::unlink(tmp.c_str());
    if (linked != 0) {
        if (err == EEXIST) return {ErrorCode::key_exists, "cannot create " + path + ": it exists already"};
        errno = err;
        return io_error("cannot create", path);
    }
    return fsync_dir(parent_of(path));
}

Status switch_symlink(const std::string& link, const std::string& target) {
    const std::string tmp = temp_name(link);
    if (::symlink(target.c_str(), tmp.c_str()) != 0) return io_error("cannot create symlink", tmp);
    if (::rename(tmp.c_str(), link.c_str()) != 0) {
        Status s = io_error("cannot switch", link);
        ::unlink(tmp.c_str());
        return s;
    }
    return fsync_dir(parent_of(link));
}

Result<std::string> read_file(const std::string& path, size_t limit) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return Status{errno == ENOENT ? ErrorCode::no_such_key : ErrorCode::internal,
                      "cannot read " + path + ": " + std::strerror(errno)};
    std::string out;
    char buf[8192];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
        if (out.size() > limit) {
            ::close(fd);
            return Status{ErrorCode::internal, path + " is larger than expected"};
        }
    }
    ::close(fd);
    return out;
}

Status make_dirs(const std::string& dir, unsigned mode) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return {ErrorCode::internal, "cannot create " + dir + ": " + ec.message()};
    ::chmod(dir.c_str(), mode);
    return {};
}

}  // namespace keyward::files
