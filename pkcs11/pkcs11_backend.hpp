// The PKCS#11 backend: keys on any token reachable through a PKCS#11 module
// (SoftHSM2, a network HSM, a smartcard through OpenSC). See docs/pkcs11.md.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/key_backend.hpp"
#include "core/result.hpp"
#include "pkcs11/card_presence.hpp"

namespace keyward::pkcs11 {

// A key made by another tool (a card's, provisioned with it) that keyward uses under its own
// name: found by an RFC 7512 object URI (id and/or object), never generated or destroyed here.
struct AdoptedKey {
    std::string name;
    std::string object_uri;  // e.g. "pkcs11:id=%00%01"
    bool operator==(const AdoptedKey&) const = default;
};

struct Pkcs11Config {
    std::string module_path;  // e.g. /usr/lib/softhsm/libsofthsm2.so
    std::string token_uri;    // RFC 7512, e.g. "pkcs11:token=keyward" (token/manufacturer/serial/model/slot-id)
    std::string pin_file;     // file holding the user PIN (trailing newline stripped); empty = no login
    size_t sessions = 0;      // session pool size; 0 = number of CPUs (at least 2)
    // A smartcard: only adopted keys are listed, the token serial seen first is the one
    // accepted afterwards, a card that is not there at start is not an error.
    bool card = false;
    std::vector<AdoptedKey> adopted{};
    std::shared_ptr<CardPresence> presence{};  // fed by the agent's PC/SC monitor, when it has one
};

// Opens the module (shared per module path inside the process, C_Initialize tolerant of
// CKR_CRYPTOKI_ALREADY_INITIALIZED, CKF_OS_LOCKING_OK), finds the token by URI, logs in.
// A PIN the token rejects does not fail the open: the backend then reports needs_pin.
Result<std::unique_ptr<KeyBackend>> open_backend(const Pkcs11Config& config);

// Initialises a fresh token in the first slot without an initialised token: C_InitToken with
// the SO PIN, then C_InitPIN for the user PIN. Usable right before open_backend() in the
// same process.
Status initialize_token(const std::string& module_path, std::string_view label, std::string_view so_pin,
                        std::string_view user_pin);

}  // namespace keyward::pkcs11
