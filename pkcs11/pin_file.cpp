#include "pkcs11/pin_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cerrno>
#include <cstring>

#include "core/unique_fd.hpp"

namespace keyward::pkcs11 {
namespace {

// Reads at most `cap` bytes; returns false on error, `size` = cap + 1 if the file is longer.
bool read_bounded(const std::string& path, unsigned char* buf, size_t cap, size_t& size, int& err, int64_t* mtime_ns) {
    UniqueFd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!f) {
        err = errno;
        return false;
    }
    if (mtime_ns) {
        struct stat st {};
        if (::fstat(f.get(), &st) != 0) {
            err = errno;
            return false;
        }
        *mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    }
    size = 0;
    for (;;) {
        unsigned char extra;
        unsigned char* dst = size < cap ? buf + size : &extra;
        const size_t want = size < cap ? cap - size : 1;
        const ssize_t n = ::read(f.get(), dst, want);
        if (n < 0) {
            if (errno == EINTR) continue;
            err = errno;
            return false;
        }
        if (n == 0) return true;
        size += static_cast<size_t>(n);
        if (size > cap) return true;
    }
}

}  // namespace

Pin::~Pin() { OPENSSL_cleanse(buf_.data(), buf_.size()); }

PinFile::PinFile(std::string path) : path_(std::move(path)) {
    if (RAND_bytes(mac_key_.data(), static_cast<int>(mac_key_.size())) != 1) mac_key_.fill(0x5c);
}

Status PinFile::read(Pin& pin) const {
    int err = 0;
    size_t size = 0;
    if (!read_bounded(path_, pin.buf_.data(), pin.buf_.size(), size, err, nullptr))
        return Status{ErrorCode::device_unavailable, "cannot read the PIN file " + path_ + ": " + std::strerror(err)};
    if (size > pin.buf_.size())
        return Status{ErrorCode::invalid_argument, "the PIN file " + path_ + " is too large to hold a PIN"};
    while (size > 0 && (pin.buf_[size - 1] == '\n' || pin.buf_[size - 1] == '\r')) --size;
    if (size == 0) return Status{ErrorCode::invalid_argument, "the PIN file " + path_ + " is empty"};
    pin.size_ = size;
    return {};
}

bool PinFile::fingerprint(Fingerprint& out) const {
    Pin content;
    int err = 0;
    size_t size = 0;
    if (!read_bounded(path_, content.buf_.data(), content.buf_.size(), size, err, &out.mtime_ns)) return false;
    if (size > content.buf_.size()) size = content.buf_.size();
    unsigned int mac_len = 0;
    return HMAC(EVP_sha256(), mac_key_.data(), static_cast<int>(mac_key_.size()), content.buf_.data(), size,
                out.mac.data(), &mac_len) != nullptr;
}

void PinFile::mark_rejected() {
    rejected_ = true;
    if (!fingerprint(rejected_print_)) rejected_print_ = Fingerprint{};
}

bool PinFile::rejected_and_unchanged() const {
    if (!rejected_) return false;
    Fingerprint now;
    if (!fingerprint(now)) return true;  // unreadable: nothing new to try
    return now == rejected_print_;
}

}  // namespace keyward::pkcs11
