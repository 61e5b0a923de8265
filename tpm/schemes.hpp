// Which signature schemes a TPM key supports: core's scheme_fits (the key type and whether
// PSS is usable) plus the TPM's own rule that a key made with a fixed scheme signs only with
// that scheme and hash. Also the TPM names of schemes and hashes, and the RSA-PSS salt probe
// that decides whether this TPM's PSS signatures are usable for TLS 1.3.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <vector>

#include <tss2/tss2_tpm2_types.h>

#include "core/result.hpp"
#include "core/schemes.hpp"

namespace keyward::tpm {

// TPM2_ALG_SHA256/384/512 for a digest of 32/48/64 bytes, else TPM2_ALG_NULL.
TPMI_ALG_HASH hash_alg_for(size_t digest_size) noexcept;
// The TPM signature scheme (algorithm and hash) that makes `scheme`'s signatures.
TPMT_SIG_SCHEME tpm_sig_scheme(const SchemeInfo& scheme) noexcept;

bool scheme_fits(const TPMT_PUBLIC& pub, KeyType type, const SchemeInfo& scheme, bool pss_ok) noexcept;
// The schemes a key with public area `pub` can use, in preference order.
std::vector<Scheme> schemes_for(const TPMT_PUBLIC& pub, KeyType type, bool pss_ok);

// Signs `digest` with the key under test using `scheme` on the TPM.
using ProbeSigner =
    std::function<Result<std::vector<uint8_t>>(const TPMT_SIG_SCHEME& scheme, std::span<const uint8_t> digest)>;

struct PssVerdict {
    bool ok = false;   // rsa_pss_* may be offered for this key
    std::string text;  // the key's tls13_rsa_pss attribute: "ok", or "no: ..."/"unknown: ..." and why
};

// TLS 1.3 needs RSA-PSS with salt = hash length; TPMs built to the letter of TPM 2.0 before
// revision 1.59 use the largest salt instead. Decided by verifying a real signature of the
// RSA key with public area `pub` and SubjectPublicKeyInfo `spki`, made by `sign`.
PssVerdict probe_rsa_pss(const TPMT_PUBLIC& pub, std::span<const uint8_t> spki, const ProbeSigner& sign);

}  // namespace keyward::tpm
