// The TPM's public structures in keyward's terms: key templates, the key type and SPKI of a
// TPMT_PUBLIC, its attributes as text, and TPMT_SIGNATURE as the bytes TLS wants.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <tss2/tss2_tpm2_types.h>

#include "core/key_backend.hpp"
#include "core/result.hpp"

namespace keyward::tpm {

// fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | sign, scheme NULL (chosen per
// signature), nameAlg SHA-256. nullopt for types keyward does not create in a TPM (rsa-4096).
std::optional<TPM2B_PUBLIC> signing_key_template(KeyType type);

// The storage primary keyward (and tpm2-openssl / tpm2-tss-engine, for keys whose parent is
// 0x40000001) derives in the owner hierarchy: ECC P-256, AES-128-CFB, restricted decrypt, noDA,
// empty unique. Same seed + same template = same key, every time.
TPM2B_PUBLIC storage_primary_template();

std::optional<KeyType> key_type_of(const TPMT_PUBLIC& pub) noexcept;
Result<std::vector<uint8_t>> spki_of(const TPMT_PUBLIC& pub);
// "fixedTPM" = "true", ... for each object attribute keyward cares about.
std::vector<Attribute> object_attributes(TPMA_OBJECT attrs);
// Why a public area cannot be used as a keyward signing key, or empty when it can.
std::string unusable_reason(const TPMT_PUBLIC& pub);

// ECDSA: DER ECDSA-Sig-Value; RSA: the signature block.
Result<std::vector<uint8_t>> signature_bytes(const TPMT_SIGNATURE& sig);

}  // namespace keyward::tpm
