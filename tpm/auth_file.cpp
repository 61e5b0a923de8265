#include "tpm/auth_file.hpp"

#include <openssl/crypto.h>

#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "core/secret_file.hpp"

namespace keyward::tpm {

AuthValue::~AuthValue() { OPENSSL_cleanse(&value, sizeof value); }

AuthFingerprint AuthValue::fingerprint() const {
    AuthFingerprint out{};
    SHA256(value.buffer, value.size, out.data());
    return out;
}

Status read_auth_file(const std::string& path, AuthValue& auth) {
    auto fd = files::open_secret(path, "the TPM auth file");
    if (!fd.ok()) return fd.status();
    // One byte more than the limit tells "too long" from "exactly the limit" (plus CR/LF).
    std::array<char, kMaxAuthSize + 3> buf{};
    size_t got = 0;
    for (;;) {
        const ssize_t n = ::read(fd->get(), buf.data() + got, buf.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            OPENSSL_cleanse(buf.data(), buf.size());
            return Status{ErrorCode::device_unavailable,
                          "cannot read the TPM auth file " + path + ": " + std::strerror(errno)};
        }
        if (n == 0 || (got += static_cast<size_t>(n)) == buf.size()) break;
    }
    std::string_view text(buf.data(), got);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    const bool too_long = got == buf.size() || text.size() > kMaxAuthSize;
    if (!too_long) {
        auth.value.size = static_cast<UINT16>(text.size());
        std::memcpy(auth.value.buffer, text.data(), text.size());
    }
    OPENSSL_cleanse(buf.data(), buf.size());
    if (too_long)
        return Status{ErrorCode::invalid_argument,
                      "the TPM auth value in " + path + " is longer than " + std::to_string(kMaxAuthSize) + " bytes"};
    return {};
}

}  // namespace keyward::tpm
