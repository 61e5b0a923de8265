#include "pkcs11/pin_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cerrno>
#include <cstring>

#include "core/secret_file.hpp"

namespace keyward::pkcs11 {
namespace {

// Reads at most `cap` bytes of the secret file; `size` = cap + 1 if the file is longer.
Status read_bounded(const std::string& path, unsigned char* buf, size_t cap, size_t& size, int64_t* mtime_ns) {
    auto f = files::open_secret(path, "the PIN file");
    if (!f.ok()) return f.status();
    if (mtime_ns) {
        struct stat st {};
        if (::fstat(f->get(), &st) != 0)
            return Status{ErrorCode::device_unavailable,
                          "cannot read the PIN file " + path + ": " + std::strerror(errno)};
        *mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    }
    size = 0;
    for (;;) {
        unsigned char extra;
        unsigned char* dst = size < cap ? buf + size : &extra;
        const size_t want = size < cap ? cap - size : 1;
        const ssize_t n = ::read(f->get(), dst, want);
        if (n < 0) {
            if (errno == EINTR) continue;
            return Status{ErrorCode::device_unavailable,
                          "cannot read the PIN file " + path + ": " + std::strerror(errno)};
        }
        if (n == 0) return {};
        size += static_cast<size_t>(n);
        if (size > cap) return {};
    }
}

}  // namespace

// mlock can fail (RLIMIT_MEMLOCK of 0 in some containers): the PIN is still wiped, only the
// swap guarantee is lost, which is no reason to refuse a login.
Pin::Pin() { (void)::mlock(buf_.data(), buf_.size()); }

Pin::~Pin() {
    OPENSSL_cleanse(buf_.data(), buf_.size());
    (void)::munlock(buf_.data(), buf_.size());
}

PinFile::PinFile(std::string path) : path_(std::move(path)) {
    if (RAND_bytes(mac_key_.data(), static_cast<int>(mac_key_.size())) != 1) mac_key_.fill(0x5c);
}

Status PinFile::read(Pin& pin) const {
    size_t size = 0;
    if (auto s = read_bounded(path_, pin.buf_.data(), pin.buf_.size(), size, nullptr); !s.ok()) return s;
    if (size > pin.buf_.size())
        return Status{ErrorCode::invalid_argument, "the PIN file " + path_ + " is too large to hold a PIN"};
    while (size > 0 && (pin.buf_[size - 1] == '\n' || pin.buf_[size - 1] == '\r')) --size;
    if (size == 0) return Status{ErrorCode::invalid_argument, "the PIN file " + path_ + " is empty"};
    pin.size_ = size;
    return {};
}

bool PinFile::fingerprint(Fingerprint& out) const {
    Pin content;
    size_t size = 0;
    if (!read_bounded(path_, content.buf_.data(), content.buf_.size(), size, &out.mtime_ns).ok()) return false;
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
