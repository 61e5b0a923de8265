// An EVP_PKEY whose private half lives elsewhere (the agent, a token), for OpenSSL code that
// wants a private-key object and only ever signs with it: the ENGINE's keys, and the keys
// the CMP issuer protects its messages with.
//
// OpenSSL 3.0 routes a key whose EC_KEY_METHOD / RSA_METHOD is not its own ("foreign")
// through the legacy EVP_PKEY_METHODs, which end in the method's sign callback: the one
// place OpenSSL lets a caller-supplied function make the signature without a provider.
// This shim owns those methods: it decides the scheme (core/scheme_select.hpp), fits ECDSA
// input to the curve, and hands (scheme, digest) to the key's sign callback. Raw RSA
// private-key operations are refused: the signer would be a decryption oracle.
//
// What reaches the callback:
// - EC (P-256, P-384): ECDSA with any digest, fitted to the curve order (so a P-384 key signs
//   SHA-256 input as ecdsa_secp384r1_sha384). The callback answers DER.
// - RSA: PKCS#1 v1.5 with SHA-256/384/512. PSS too, when the key is made with an ENGINE
//   that offers legacy_rsa_pkey_method(): OpenSSL's own RSA EVP_PKEY_METHOD would turn PSS
//   into padding + a raw private operation, ours maps digest, padding, salt length and MGF1
//   onto the PSS schemes instead.
#pragma once

#include <openssl/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <typeinfo>
#include <vector>

#include "core/ossl.hpp"
#include "core/result.hpp"
#include "core/schemes.hpp"

namespace keyward {

struct LegacySigner {
    std::string name;  // the key's name, for messages ("key NAME: ...")
    // Signs `digest` (for ECDSA: the curve-sized input) with `scheme`; ECDSA answers DER.
    // Puts its own failures on the OpenSSL error queue: it knows who failed and why.
    std::function<Result<std::vector<uint8_t>>(Scheme scheme, std::span<const uint8_t> digest)> sign;
    // Puts a failure the shim found on the error queue, in the owner's words. The status
    // says what failed ("key NAME: raw RSA private-key operations are not offered"):
    // unsupported_scheme, invalid_argument, protocol_error (the signer's answer is unusable)
    // or internal.
    std::function<void(const Status&)> fail;
};

// The key for the public key `spki` (DER SubjectPublicKeyInfo, EC or RSA). `owner` lives as
// long as the key object and its copies; legacy_key_owner() finds it again. `engine`, if
// given, is attached to RSA keys for PSS (see above).
Result<ossl::PKey> make_legacy_pkey(std::span<const uint8_t> spki, std::shared_ptr<void> owner,
                                    const std::type_info& owner_type, LegacySigner signer, ENGINE* engine = nullptr);

template <typename T>
Result<ossl::PKey> make_legacy_pkey(std::span<const uint8_t> spki, std::shared_ptr<T> owner, LegacySigner signer,
                                    ENGINE* engine = nullptr) {
    return make_legacy_pkey(spki, std::shared_ptr<void>(std::move(owner)), typeid(T), std::move(signer), engine);
}

// The owner of a key made by make_legacy_pkey with an owner of this type; null for any other key.
void* legacy_key_owner(const EVP_PKEY* pkey, const std::type_info& owner_type) noexcept;

template <typename T>
T* legacy_key_owner(const EVP_PKEY* pkey) noexcept {
    return static_cast<T*>(legacy_key_owner(pkey, typeid(T)));
}

// The RSA EVP_PKEY_METHOD an ENGINE offers (ENGINE_set_pkey_meths) for the keys it hands
// out: OpenSSL's own, with `sign` going to the key's signer; other keys sign as before.
// Null if it could not be made. Lives until the process ends (keys may outlive the engine).
EVP_PKEY_METHOD* legacy_rsa_pkey_method() noexcept;

}  // namespace keyward
