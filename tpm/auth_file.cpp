#include "tpm/auth_file.hpp"

#include <openssl/crypto.h>

#include <cstring>
#include <fstream>
#include <iterator>

namespace keyward::tpm {

AuthValue::~AuthValue() { OPENSSL_cleanse(&value, sizeof value); }

AuthFingerprint AuthValue::fingerprint() const {
    AuthFingerprint out{};
    SHA256(value.buffer, value.size, out.data());
    return out;
}

Status read_auth_file(const std::string& path, AuthValue& auth) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status{ErrorCode::device_unavailable, "cannot read the TPM auth file " + path};
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    const bool too_long = text.size() > kMaxAuthSize;
    if (!too_long) {
        auth.value.size = static_cast<UINT16>(text.size());
        std::memcpy(auth.value.buffer, text.data(), text.size());
    }
    OPENSSL_cleanse(text.data(), text.size());
    if (too_long)
        return Status{ErrorCode::invalid_argument,
                      "the TPM auth value in " + path + " is longer than " + std::to_string(kMaxAuthSize) + " bytes"};
    return {};
}

}  // namespace keyward::tpm
