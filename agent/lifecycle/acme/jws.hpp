// JOSE pieces ACME needs (RFC 7515/7517/7518/7638): the account key's JWK and thumbprint,
// ECDSA signatures in JWS form (raw r||s instead of DER), and the flattened JWS body.
// The private key never comes here: signing is a callback (the device signs a digest).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ipc/protocol.hpp"
#include "core/result.hpp"

namespace keyward::acme {

struct AccountKeyForm {
    std::string alg;           // "ES256", "ES384", "RS256"
    Scheme scheme;             // what the device signs with for that alg
    std::string digest;        // OpenSSL digest name the signing input is hashed with
    size_t ec_coordinate = 0;  // bytes per r / s for ECDSA; 0 for RSA
    nlohmann::json jwk;        // public JWK, members of RFC 7638 only
    std::string thumbprint;    // base64url(SHA-256(canonical JWK))
};

// From a SubjectPublicKeyInfo (DER): EC P-256, EC P-384 or RSA (2048 bits and up).
Result<AccountKeyForm> account_key_form(std::span<const uint8_t> spki);

// RFC 7638 canonical form: required members only, sorted, no whitespace.
std::string jwk_thumbprint(const nlohmann::json& jwk);

// Produces the JWS signature bytes (already in JWS form) over `signing_input`.
using JwsSigner = std::function<Result<std::vector<uint8_t>>(std::string_view signing_input)>;

// Flattened JSON serialization (RFC 7515 §7.2.2). `payload` is the exact payload text;
// empty means POST-as-GET (payload "" in the JWS).
Result<std::string> make_jws(const nlohmann::json& protected_header, std::string_view payload, const JwsSigner& signer);

}  // namespace keyward::acme
