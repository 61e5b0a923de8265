// The TSS2 PRIVATE KEY file: the wrapped-key format tpm2-openssl, tpm2-tss-engine and the
// kernel's trusted keys share (ASN.1 module TPM2-KEY, OID 2.23.133.10.1.3 "loadable key"):
//
//   TPMKey ::= SEQUENCE {
//     type        OBJECT IDENTIFIER,               -- 2.23.133.10.1.3
//     emptyAuth   [0] EXPLICIT BOOLEAN OPTIONAL,
//     policy      [1] EXPLICIT SEQUENCE OF ... OPTIONAL,
//     secret      [2] EXPLICIT OCTET STRING OPTIONAL,
//     parent      INTEGER,                         -- 0x40000001: the owner hierarchy's primary
//     pubkey      OCTET STRING,                    -- marshalled TPM2B_PUBLIC
//     privkey     OCTET STRING }                   -- marshalled TPM2B_PRIVATE
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <tss2/tss2_tpm2_types.h>

#include "core/result.hpp"

namespace keyward::tpm {

struct KeyFile {
    bool empty_auth = true;
    TPM2_HANDLE parent = TPM2_RH_OWNER;
    TPM2B_PUBLIC pub{};
    TPM2B_PRIVATE priv{};
};

// PEM ("-----BEGIN TSS2 PRIVATE KEY-----") or bare DER in; only loadable keys without a
// policy are accepted (keyward cannot satisfy policies).
Result<KeyFile> parse_key_file(std::span<const uint8_t> bytes);
std::vector<uint8_t> encode_key_file_der(const KeyFile& key);
std::string encode_key_file_pem(const KeyFile& key);

}  // namespace keyward::tpm
