// The one interface every device kind implements (PKCS#11 token, TPM, smartcard).
// Everything device-specific stays behind it; the agent only sees keys by label.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/key_types.hpp"
#include "core/result.hpp"
#include "core/schemes.hpp"

namespace keyward {

struct BackendKey {
    std::string label;  // the key's name on the device
    KeyType type = KeyType::ec_p256;
    std::vector<uint8_t> spki;          // SubjectPublicKeyInfo DER
    std::vector<Scheme> schemes;        // what this device can do with this key
    std::vector<Attribute> attributes;  // as read back from the device, not as intended
    std::vector<uint8_t> certificate;   // DER, when the device keeps one next to the key (a card's)
};

// locked: the device refuses the PIN for good (a card after its last try); never tried again.
enum class DeviceHealth { present, removed, needs_pin, locked, error };
std::string_view device_health_name(DeviceHealth h) noexcept;

// Threading contract: every method may be called from any thread; the agent calls at
// most max_concurrency() of them at once (device work runs on an executor sized by it,
// and a fast signature may run on the event loop's thread in one of those places).
// A backend recovers lost sessions and logins itself (reopen, log in again, retry once
// where safe) and answers device_unavailable meanwhile; it never retries a PIN the
// device rejected.
class KeyBackend {
public:
    virtual ~KeyBackend() = default;

    virtual std::string_view kind() const noexcept = 0;   // "pkcs11", "tpm"
    virtual std::string description() const = 0;          // for status: model, label
    virtual size_t max_concurrency() const noexcept = 0;  // 1 for TPMs and smartcards
    virtual DeviceHealth health() = 0;

    virtual Result<std::vector<BackendKey>> list_keys() = 0;
    virtual Result<BackendKey> describe(const std::string& label) = 0;
    // Generates on the device, non-exportable by construction. key_exists if the label is taken.
    virtual Result<BackendKey> generate(const std::string& label, KeyType type) = 0;
    virtual Status destroy(const std::string& label) = 0;
    // Adopts a key another tool made on this device, from its device-specific file (a TPM's
    // wrapped blob). Devices whose keys cannot be adopted this way keep the default.
    virtual Result<BackendKey> import_key(const std::string& label, std::span<const uint8_t> blob) {
        (void)label;
        (void)blob;
        return Status{ErrorCode::invalid_argument, "this token cannot import key files"};
    }

    // `digest` is the hash the client computed with the scheme's digest. ECDSA answers
    // DER; RSA PKCS#1 gets its DigestInfo built here; PSS uses salt = hash length.
    // No raw RSA operation exists on purpose.
    virtual Result<std::vector<uint8_t>> sign(const std::string& label, Scheme scheme,
                                              std::span<const uint8_t> digest) = 0;
};

}  // namespace keyward
