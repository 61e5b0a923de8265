#include "agent/state_dir.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace keyward::agent {
namespace {

std::string octal(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

Status refuse(const std::string& what, const std::string& fix) {
    return {ErrorCode::invalid_argument, what + "; " + fix};
}

}  // namespace

Status secure_state_dir(const std::string& dir_in, uid_t uid) {
    std::error_code ec;
    const std::filesystem::path dir = std::filesystem::absolute(dir_in, ec);
    if (ec) return {ErrorCode::invalid_argument, "state directory " + dir_in + ": " + ec.message()};
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0) {
        if (errno != ENOENT)
            return {ErrorCode::internal, "state directory " + dir.string() + ": " + std::strerror(errno)};
        std::filesystem::create_directories(dir.parent_path(), ec);
        if (ec) return {ErrorCode::internal, "cannot create " + dir.parent_path().string() + ": " + ec.message()};
        if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
            return {ErrorCode::internal,
                    "cannot create the state directory " + dir.string() + ": " + std::strerror(errno)};
        if (::lstat(dir.c_str(), &st) != 0)
            return {ErrorCode::internal, "state directory " + dir.string() + ": " + std::strerror(errno)};
    }
    const std::string name = dir.string();
    if (S_ISLNK(st.st_mode))
        return refuse("the state directory " + name + " is a symbolic link",
                      "point --state-dir / state_dir at the real directory");
    if (!S_ISDIR(st.st_mode)) return refuse("the state directory " + name + " is not a directory", "remove it");
    if (st.st_uid != uid)
        return refuse("the state directory " + name + " belongs to uid " + std::to_string(st.st_uid) +
                          ", not to the agent's uid " + std::to_string(uid),
                      "fix: chown " + std::to_string(uid) + " " + name);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return refuse("the state directory " + name + " is writable by others (mode " + octal(st.st_mode) + ")",
                      "fix: chmod 700 " + name);
    for (auto parent = dir.parent_path(); !parent.empty(); parent = parent.parent_path()) {
        if (::stat(parent.c_str(), &st) != 0)
            return {ErrorCode::internal, "cannot check " + parent.string() + ": " + std::strerror(errno)};
        if (st.st_uid != 0 && st.st_uid != uid)
            return refuse("the directory " + parent.string() + " above the state directory belongs to uid " +
                              std::to_string(st.st_uid) + ", who could replace the state directory",
                          "move the state directory or fix: chown root " + parent.string());
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
            return refuse("the directory " + parent.string() +
                              " above the state directory is writable by others (mode " + octal(st.st_mode) + ")",
                          "fix: chmod go-w " + parent.string() + " (or make it sticky like /tmp: chmod +t)");
        if (parent == parent.root_path()) break;
    }
    return {};
}

}  // namespace keyward::agent
