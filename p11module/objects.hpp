// The PKCS#11 objects that stand for one agent key: its private key (which signs through
// the agent), its public key, and the certificates of the identity whose key it is (the
// leaf, then each chain certificate as an object of its own). Built from a GET_KEY answer;
// pure (no I/O), so the attribute values are unit-testable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <p11-kit/pkcs11.h>

#include "core/result.hpp"
#include "core/schemes.hpp"
#include "ipc/protocol.hpp"

namespace keyward::p11module {

struct ObjectAttribute {
    CK_ATTRIBUTE_TYPE type;
    std::vector<uint8_t> value;
};

struct Object {
    CK_OBJECT_CLASS object_class = CKO_PRIVATE_KEY;
    // What makes this object the same one on the next refresh (so its handle stays): the
    // class, the key name and a hash of the public key or certificate. A key replaced under
    // the same name is a new object with a new handle.
    std::string identity;
    std::string key_name;  // the agent key; empty for a chain certificate shared by keys
    std::vector<ObjectAttribute> attributes;

    // Private keys: what signing needs.
    bool is_ec = false;
    size_t signature_size = 0;  // ECDSA: raw r||s (2 × coordinate); RSA: modulus bytes
    std::vector<Scheme> schemes;

    const ObjectAttribute* find(CK_ATTRIBUTE_TYPE type) const noexcept;
    bool matches(std::span<const CK_ATTRIBUTE> tmpl) const noexcept;
};

// CKA_ID of a key: the first kKeyIdSize bytes of SHA-256 over its SubjectPublicKeyInfo DER.
// Stable for as long as the key exists, the same in every process and after an agent
// restart, and computable by anyone holding the certificate.
inline constexpr size_t kKeyIdSize = 20;
std::vector<uint8_t> key_id_for_spki(std::span<const uint8_t> spki);

// The objects of one key, private key first. Fails when the SPKI or a certificate does not
// parse (the agent sent something this module cannot describe).
Result<std::vector<Object>> objects_for_key(const ipc::KeyInfo& key);

}  // namespace keyward::p11module
