#include "cli/io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/ossl.hpp"
#include "core/unique_fd.hpp"

namespace keyward::cli {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

bool write_all(int fd, const uint8_t* data, size_t size) {
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data += n;
        size -= static_cast<size_t>(n);
    }
    return true;
}

}  // namespace

Status write_output(const std::string& path, std::span<const uint8_t> bytes, mode_t mode) {
    if (path.empty() || path == "-") {
        if (!write_all(STDOUT_FILENO, bytes.data(), bytes.size()))
            return {ErrorCode::internal, "cannot write to stdout: " + errno_text(errno)};
        return {};
    }
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return {ErrorCode::internal, "cannot create " + path + ": " + errno_text(errno)};
    // An existing file keeps its mode through O_TRUNC: set ours (a key reference must not stay
    // world-readable). Only on regular files: --out /dev/stdout or /dev/null are not ours to change.
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) != mode && ::fchmod(fd, mode) != 0) {
        const int err = errno;
        ::close(fd);
        return {ErrorCode::internal, "cannot set the mode of " + path + ": " + errno_text(err)};
    }
    const bool written = write_all(fd, bytes.data(), bytes.size());
    const int write_errno = errno;
    if (::close(fd) != 0 && written) return {ErrorCode::internal, "cannot write " + path + ": " + errno_text(errno)};
    if (!written) return {ErrorCode::internal, "cannot write " + path + ": " + errno_text(write_errno)};
    return {};
}

Status write_output(const std::string& path, std::string_view text, mode_t mode) {
    return write_output(path, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()), mode);
}

Result<std::vector<uint8_t>> digest_file(const std::string& path, std::string_view digest_name) {
    const std::string md_name(digest_name);
    ossl::Md md(EVP_MD_fetch(nullptr, md_name.c_str(), nullptr));
    ossl::MdCtx ctx(EVP_MD_CTX_new());
    if (!md || !ctx || !EVP_DigestInit_ex(ctx.get(), md.get(), nullptr))
        return Status{ErrorCode::internal, "digest " + md_name + " is not available"};

    const bool from_stdin = path == "-";
    const UniqueFd file(from_stdin ? -1 : ::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    const int fd = from_stdin ? STDIN_FILENO : file.get();
    if (fd < 0) return Status{ErrorCode::invalid_argument, "cannot open " + path + ": " + errno_text(errno)};
    std::vector<uint8_t> buf(64 * 1024);
    Status status;
    for (;;) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            status = {ErrorCode::invalid_argument, "cannot read " + path + ": " + errno_text(errno)};
            break;
        }
        if (n == 0) break;
        if (!EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n))) {
            status = {ErrorCode::internal, "hashing " + path + " failed"};
            break;
        }
    }
    if (!status.ok()) return status;
    std::vector<uint8_t> out(EVP_MAX_MD_SIZE);
    unsigned int len = 0;
    if (!EVP_DigestFinal_ex(ctx.get(), out.data(), &len)) return Status{ErrorCode::internal, "hashing failed"};
    out.resize(len);
    return out;
}

}  // namespace keyward::cli
