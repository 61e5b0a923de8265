#include "tpm/schemes.hpp"

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "core/ossl.hpp"

namespace keyward::tpm {
namespace {

TPM2_ALG_ID sig_alg_for(SchemeFamily family) noexcept {
    return family == SchemeFamily::ecdsa     ? TPM2_ALG_ECDSA
           : family == SchemeFamily::rsa_pss ? TPM2_ALG_RSAPSS
                                             : TPM2_ALG_RSASSA;
}

bool salt_is_hash_length(std::span<const uint8_t> spki, std::span<const uint8_t> digest,
                         std::span<const uint8_t> signature) {
    const unsigned char* p = spki.data();
    ossl::PKey pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())));
    if (!pkey) return false;
    ossl::PKeyCtx ctx(EVP_PKEY_CTX_new(pkey.get(), nullptr));
    return ctx && EVP_PKEY_verify_init(ctx.get()) > 0 &&
           EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PSS_PADDING) > 0 &&
           EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) > 0 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(), RSA_PSS_SALTLEN_DIGEST) > 0 &&
           EVP_PKEY_verify(ctx.get(), signature.data(), signature.size(), digest.data(), digest.size()) == 1;
}

}  // namespace

TPMI_ALG_HASH hash_alg_for(size_t digest_size) noexcept {
    switch (digest_size) {
        case 32: return TPM2_ALG_SHA256;
        case 48: return TPM2_ALG_SHA384;
        case 64: return TPM2_ALG_SHA512;
        default: return TPM2_ALG_NULL;
    }
}

TPMT_SIG_SCHEME tpm_sig_scheme(const SchemeInfo& scheme) noexcept {
    TPMT_SIG_SCHEME out{};
    out.scheme = sig_alg_for(scheme.family);
    out.details.any.hashAlg = hash_alg_for(scheme.digest_size);
    return out;
}

bool scheme_fits(const TPMT_PUBLIC& pub, KeyType type, const SchemeInfo& s, bool pss_ok) noexcept {
    if (!keyward::scheme_fits(type, s, pss_ok)) return false;
    const bool ec = key_type_is_ec(type);
    // A key made with a fixed scheme signs only with that scheme and hash.
    const TPMT_ASYM_SCHEME& fixed = ec ? reinterpret_cast<const TPMT_ASYM_SCHEME&>(pub.parameters.eccDetail.scheme)
                                       : reinterpret_cast<const TPMT_ASYM_SCHEME&>(pub.parameters.rsaDetail.scheme);
    if (fixed.scheme == TPM2_ALG_NULL) return true;
    return fixed.scheme == sig_alg_for(s.family) && fixed.details.anySig.hashAlg == hash_alg_for(s.digest_size);
}

std::vector<Scheme> schemes_for(const TPMT_PUBLIC& pub, KeyType type, bool pss_ok) {
    std::vector<Scheme> out;
    for (const auto& s : all_schemes())
        if (scheme_fits(pub, type, s, pss_ok)) out.push_back(s.scheme);
    return out;
}

PssVerdict probe_rsa_pss(const TPMT_PUBLIC& pub, std::span<const uint8_t> spki, const ProbeSigner& sign) {
    const TPMI_ALG_ASYM_SCHEME fixed = pub.parameters.rsaDetail.scheme.scheme;
    if (fixed != TPM2_ALG_NULL && fixed != TPM2_ALG_RSAPSS) return {false, "no: the key is fixed to another scheme"};
    TPMT_SIG_SCHEME scheme{};
    scheme.scheme = TPM2_ALG_RSAPSS;
    scheme.details.rsapss.hashAlg = TPM2_ALG_SHA256;
    std::vector<uint8_t> digest(SHA256_DIGEST_LENGTH);
    static constexpr char kProbe[] = "keyward: does this TPM's RSA-PSS salt equal the hash length?";
    SHA256(reinterpret_cast<const unsigned char*>(kProbe), sizeof kProbe - 1, digest.data());
    auto sig = sign(scheme, digest);
    if (!sig.ok()) return {false, "unknown: the test signature failed: " + sig.status().message};
    if (salt_is_hash_length(spki, digest, sig.value())) return {true, "ok"};
    return {false, "no: this TPM's RSA-PSS salt is not the hash length, which TLS 1.3 requires; rsa_pss_* not offered"};
}

}  // namespace keyward::tpm
