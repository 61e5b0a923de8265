#include "tpm/key_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "core/durable_file.hpp"
#include "core/unique_fd.hpp"

namespace keyward::tpm {
namespace {

constexpr std::string_view kSuffix = ".pem";
constexpr size_t kMaxKeyFileSize = 64 * 1024;

std::string errno_text(int err) { return std::strerror(err); }

Status make_dirs(const std::string& dir) {
    std::string partial;
    size_t pos = 0;
    while (pos != std::string::npos) {
        pos = dir.find('/', pos + 1);
        partial = dir.substr(0, pos);
        if (partial.empty()) continue;
        if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST)
            return Status{ErrorCode::device_error, "cannot create " + partial + ": " + errno_text(errno)};
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        return Status{ErrorCode::device_error, dir + " is not a directory"};
    return {};
}

struct DirCloser {
    void operator()(DIR* d) const noexcept { ::closedir(d); }
};

}  // namespace

bool KeyStore::is_valid_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > 64 || name.front() == '.' || name.front() == '-') return false;
    return std::all_of(name.begin(), name.end(), [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
               ch == '_' || ch == '-';
    });
}

Result<KeyStore> KeyStore::open(const std::string& dir) {
    if (dir.empty()) return Status{ErrorCode::invalid_argument, "no key directory configured"};
    if (auto s = make_dirs(dir); !s.ok()) return s;
    return KeyStore(dir);
}

Result<std::vector<std::string>> KeyStore::names() const {
    std::unique_ptr<DIR, DirCloser> d(::opendir(dir_.c_str()));
    if (!d) return Status{ErrorCode::device_error, "cannot read " + dir_ + ": " + errno_text(errno)};
    std::vector<std::string> out;
    while (const dirent* e = ::readdir(d.get())) {
        std::string_view file = e->d_name;
        if (file.size() <= kSuffix.size() || file.substr(file.size() - kSuffix.size()) != kSuffix) continue;
        std::string name(file.substr(0, file.size() - kSuffix.size()));
        if (is_valid_name(name)) out.push_back(std::move(name));
    }
    std::sort(out.begin(), out.end());
    return out;
}

Result<std::vector<uint8_t>> KeyStore::read(const std::string& name) const {
    if (!is_valid_name(name)) return Status{ErrorCode::no_such_key, "no key named " + name};
    UniqueFd f(::open(path_of(name).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!f) {
        if (errno == ENOENT) return Status{ErrorCode::no_such_key, "no key named " + name};
        return Status{ErrorCode::device_error, "cannot read " + path_of(name) + ": " + errno_text(errno)};
    }
    std::vector<uint8_t> out;
    uint8_t buf[4096];
    for (;;) {
        const ssize_t n = ::read(f.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Status{ErrorCode::device_error, "cannot read " + path_of(name) + ": " + errno_text(errno)};
        if (n == 0) break;
        out.insert(out.end(), buf, buf + n);
        if (out.size() > kMaxKeyFileSize) return Status{ErrorCode::device_error, path_of(name) + " is too large"};
    }
    return out;
}

Status KeyStore::create(const std::string& name, std::string_view contents) const {
    if (!is_valid_name(name)) return Status{ErrorCode::invalid_argument, "invalid key name " + name};
    // Published with link(2), which refuses an existing name: two creators cannot replace
    // each other's key, and a crash never leaves half a key under the name.
    Status s = files::publish_new(path_of(name), contents, 0600);
    if (s.code == ErrorCode::key_exists)
        return Status{ErrorCode::key_exists, "a key named " + name + " exists already"};
    if (!s.ok()) return Status{ErrorCode::device_error, s.message};
    return {};
}

Status KeyStore::remove(const std::string& name) const {
    if (!is_valid_name(name)) return Status{ErrorCode::no_such_key, "no key named " + name};
    if (::unlink(path_of(name).c_str()) != 0) {
        if (errno == ENOENT) return Status{ErrorCode::no_such_key, "no key named " + name};
        return Status{ErrorCode::device_error, "cannot remove " + path_of(name) + ": " + errno_text(errno)};
    }
    return {};
}

}  // namespace keyward::tpm
