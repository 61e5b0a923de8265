// RFC 7512 PKCS#11 URIs, restricted to what selects a token.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace keyward::pkcs11 {

struct TokenUri {
    std::optional<std::string> token;         // CK_TOKEN_INFO.label
    std::optional<std::string> manufacturer;  // CK_TOKEN_INFO.manufacturerID
    std::optional<std::string> serial;        // CK_TOKEN_INFO.serialNumber
    std::optional<std::string> model;         // CK_TOKEN_INFO.model
    std::optional<unsigned long> slot_id;     // slot-id (RFC 7512 §2.3)
};

// Total: every input gives a TokenUri or an invalid_argument Status naming the problem.
Result<TokenUri> parse_token_uri(std::string_view uri);

// A key already on a token (a smartcard's), selected by RFC 7512 `id` (CKA_ID bytes) and/or
// `object` (CKA_LABEL, spaces percent-encoded); `type`, if given, must be "private".
struct ObjectUri {
    std::optional<std::string> id;      // raw CKA_ID bytes
    std::optional<std::string> object;  // CKA_LABEL
    bool operator==(const ObjectUri&) const = default;
};

// Total, like parse_token_uri; at least one of id and object is required.
Result<ObjectUri> parse_object_uri(std::string_view uri);

}  // namespace keyward::pkcs11
