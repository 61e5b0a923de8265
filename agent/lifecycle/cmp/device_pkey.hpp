// An EVP_PKEY for a device key, for OpenSSL code that wants a private key object and will
// only ever sign with it (OSSL_CMP: message protection with the current key, proof of
// possession with the new one). The object holds the public key read back from the
// device; its private operations go through KeyAccess::sign, so they run on the key's
// token executor and no key material ever enters this process.
//
// The object is core/legacy_key.hpp's: EC keys sign ECDSA with any digest (the input is
// fitted to the curve order); RSA keys sign PKCS#1 v1.5 only (no ENGINE, so no PSS). Raw
// RSA private operations are refused, as everywhere in keyward. Only the schemes the
// device lists for the key are asked for.
#pragma once

#include <memory>
#include <string>

#include <openssl/evp.h>

#include "agent/lifecycle/key_access.hpp"
#include "core/ossl.hpp"
#include "core/result.hpp"

namespace keyward::lifecycle {

using PkeyPtr = ossl::PKey;

// `keys` is copied into the key object: the EVP_PKEY may outlive the caller's KeyAccess.
Result<PkeyPtr> make_device_pkey(const KeyAccess& keys, const std::string& key_name);

// The device's answer to the last signature that failed with this key (success if none):
// OpenSSL's callers only see "signing failed", the lifecycle wants to know why (a missing
// PIN is not a CA problem).
Status last_device_error(EVP_PKEY* pkey);

}  // namespace keyward::lifecycle
