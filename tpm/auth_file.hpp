// The auth value of keys made on a TPM token, read from the file the token's auth_file names.
// The value lives only as long as one TPM command needs it and is wiped when it goes.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <openssl/sha.h>
#include <tss2/tss2_tpm2_types.h>

#include "core/result.hpp"

namespace keyward::tpm {

// At most a digest: what TPM2B_AUTH holds.
constexpr size_t kMaxAuthSize = sizeof(TPMU_HA);

using AuthFingerprint = std::array<uint8_t, SHA256_DIGEST_LENGTH>;

// An auth value; wiped when it goes. Empty until read.
struct AuthValue {
    TPM2B_AUTH value{};
    AuthValue() = default;
    AuthValue(const AuthValue&) = delete;
    AuthValue& operator=(const AuthValue&) = delete;
    ~AuthValue();
    // SHA-256 of the value: remembers which value the TPM rejected without keeping it.
    AuthFingerprint fingerprint() const;
};

// Reads `path` into `auth`; trailing CR/LF are not part of the value. device_unavailable
// when the file cannot be read, invalid_argument when the value is too long.
Status read_auth_file(const std::string& path, AuthValue& auth);

}  // namespace keyward::tpm
