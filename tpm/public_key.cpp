#include "tpm/public_key.hpp"

#include <memory>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

namespace keyward::tpm {
namespace {

constexpr TPMA_OBJECT kSigningKeyAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                              TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                              TPMA_OBJECT_SIGN_ENCRYPT;
constexpr uint32_t kDefaultRsaExponent = 65537;

using BnPtr = std::unique_ptr<BIGNUM, decltype(&BN_free)>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)>;
using ParamsPtr = std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)>;

Result<std::vector<uint8_t>> spki_from_params(const char* algorithm, OSSL_PARAM_BLD* bld) {
    ParamsPtr params(OSSL_PARAM_BLD_to_param(bld), OSSL_PARAM_free);
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, algorithm, nullptr), EVP_PKEY_CTX_free);
    EVP_PKEY* raw = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0)
        return Status{ErrorCode::device_error, "the TPM's public key is not a valid key"};
    PkeyPtr pkey(raw, EVP_PKEY_free);
    unsigned char* der = nullptr;
    const int len = i2d_PUBKEY(pkey.get(), &der);
    if (len <= 0) return Status{ErrorCode::internal, "cannot encode the public key"};
    std::vector<uint8_t> out(der, der + len);
    OPENSSL_free(der);
    return out;
}

}  // namespace

std::optional<TPM2B_PUBLIC> signing_key_template(KeyType type) {
    TPM2B_PUBLIC t{};
    TPMT_PUBLIC& p = t.publicArea;
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = kSigningKeyAttributes;
    switch (type) {
        case KeyType::ec_p256:
        case KeyType::ec_p384:
            p.type = TPM2_ALG_ECC;
            p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
            p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
            p.parameters.eccDetail.curveID = type == KeyType::ec_p256 ? TPM2_ECC_NIST_P256 : TPM2_ECC_NIST_P384;
            p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
            return t;
        case KeyType::rsa_2048:
        case KeyType::rsa_3072:
            p.type = TPM2_ALG_RSA;
            p.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
            p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
            p.parameters.rsaDetail.keyBits = static_cast<TPMI_RSA_KEY_BITS>(key_type_bits(type));
            p.parameters.rsaDetail.exponent = 0;  // the default, 65537
            return t;
        default:
            return std::nullopt;
    }
}

TPM2B_PUBLIC storage_primary_template() {
    TPM2B_PUBLIC t{};
    TPMT_PUBLIC& p = t.publicArea;
    p.type = TPM2_ALG_ECC;
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                         TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
    p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
    p.parameters.eccDetail.symmetric.keyBits.aes = 128;
    p.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    return t;
}

std::optional<KeyType> key_type_of(const TPMT_PUBLIC& pub) noexcept {
    if (pub.type == TPM2_ALG_ECC) {
        if (pub.parameters.eccDetail.curveID == TPM2_ECC_NIST_P256) return KeyType::ec_p256;
        if (pub.parameters.eccDetail.curveID == TPM2_ECC_NIST_P384) return KeyType::ec_p384;
        return std::nullopt;
    }
    if (pub.type == TPM2_ALG_RSA) {
        switch (pub.parameters.rsaDetail.keyBits) {
            case 2048: return KeyType::rsa_2048;
            case 3072: return KeyType::rsa_3072;
            case 4096: return KeyType::rsa_4096;
            default: return std::nullopt;
        }
    }
    return std::nullopt;
}

std::string unusable_reason(const TPMT_PUBLIC& pub) {
    if (!key_type_of(pub)) return "a key type keyward does not handle (EC P-256/P-384, RSA 2048-4096)";
    const TPMA_OBJECT a = pub.objectAttributes;
    if (!(a & TPMA_OBJECT_SIGN_ENCRYPT)) return "not a signing key (the sign attribute is clear)";
    if (a & TPMA_OBJECT_RESTRICTED) return "a restricted key (it only signs TPM-made digests)";
    if (!(a & TPMA_OBJECT_USERWITHAUTH)) return "usable only with a policy, which keyward does not support";
    const TPMI_ALG_ASYM_SCHEME scheme =
        pub.type == TPM2_ALG_ECC ? pub.parameters.eccDetail.scheme.scheme : pub.parameters.rsaDetail.scheme.scheme;
    if (scheme != TPM2_ALG_NULL && scheme != TPM2_ALG_ECDSA && scheme != TPM2_ALG_RSASSA && scheme != TPM2_ALG_RSAPSS)
        return "its fixed signature scheme is not ECDSA, RSASSA or RSAPSS";
    return {};
}

Result<std::vector<uint8_t>> spki_of(const TPMT_PUBLIC& pub) {
    ParamBldPtr bld(OSSL_PARAM_BLD_new(), OSSL_PARAM_BLD_free);
    if (!bld) return Status{ErrorCode::internal, "out of memory"};
    if (pub.type == TPM2_ALG_ECC) {
        const auto& x = pub.unique.ecc.x;
        const auto& y = pub.unique.ecc.y;
        const size_t size = pub.parameters.eccDetail.curveID == TPM2_ECC_NIST_P256 ? 32 : 48;
        if (x.size > size || y.size > size) return Status{ErrorCode::device_error, "malformed EC point from the TPM"};
        // Uncompressed point, coordinates left-padded to the field size.
        std::vector<uint8_t> point(1 + 2 * size, 0);
        point[0] = 0x04;
        std::copy(x.buffer, x.buffer + x.size, point.begin() + 1 + (size - x.size));
        std::copy(y.buffer, y.buffer + y.size, point.begin() + 1 + size + (size - y.size));
        const char* group = size == 32 ? "prime256v1" : "secp384r1";
        if (!OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()))
            return Status{ErrorCode::internal, "out of memory"};
        return spki_from_params("EC", bld.get());
    }
    if (pub.type == TPM2_ALG_RSA) {
        const uint32_t e = pub.parameters.rsaDetail.exponent ? pub.parameters.rsaDetail.exponent : kDefaultRsaExponent;
        BnPtr n(BN_bin2bn(pub.unique.rsa.buffer, pub.unique.rsa.size, nullptr), BN_free);
        BnPtr exp(BN_new(), BN_free);
        if (!n || !exp || !BN_set_word(exp.get(), e) || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) ||
            !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, exp.get()))
            return Status{ErrorCode::internal, "out of memory"};
        return spki_from_params("RSA", bld.get());
    }
    return Status{ErrorCode::unsupported_scheme, "not an EC or RSA key"};
}

std::vector<Attribute> object_attributes(TPMA_OBJECT attrs) {
    static constexpr struct {
        const char* name;
        TPMA_OBJECT bit;
    } kBits[] = {
        {"fixedTPM", TPMA_OBJECT_FIXEDTPM},
        {"fixedParent", TPMA_OBJECT_FIXEDPARENT},
        {"sensitiveDataOrigin", TPMA_OBJECT_SENSITIVEDATAORIGIN},
        {"userWithAuth", TPMA_OBJECT_USERWITHAUTH},
        {"adminWithPolicy", TPMA_OBJECT_ADMINWITHPOLICY},
        {"noDA", TPMA_OBJECT_NODA},
        {"restricted", TPMA_OBJECT_RESTRICTED},
        {"decrypt", TPMA_OBJECT_DECRYPT},
        {"sign", TPMA_OBJECT_SIGN_ENCRYPT},
    };
    std::vector<Attribute> out;
    for (const auto& b : kBits) out.push_back({b.name, (attrs & b.bit) ? "true" : "false"});
    return out;
}

TPMI_ALG_HASH hash_alg_for(size_t digest_size) noexcept {
    switch (digest_size) {
        case 32: return TPM2_ALG_SHA256;
        case 48: return TPM2_ALG_SHA384;
        case 64: return TPM2_ALG_SHA512;
        default: return TPM2_ALG_NULL;
    }
}

Result<std::vector<uint8_t>> signature_bytes(const TPMT_SIGNATURE& sig) {
    switch (sig.sigAlg) {
        case TPM2_ALG_ECDSA: {
            const auto& r = sig.signature.ecdsa.signatureR;
            const auto& s = sig.signature.ecdsa.signatureS;
            std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> es(ECDSA_SIG_new(), ECDSA_SIG_free);
            BIGNUM* br = BN_bin2bn(r.buffer, r.size, nullptr);
            BIGNUM* bs = BN_bin2bn(s.buffer, s.size, nullptr);
            if (!es || !br || !bs || !ECDSA_SIG_set0(es.get(), br, bs)) {
                BN_free(br);
                BN_free(bs);
                return Status{ErrorCode::internal, "out of memory"};
            }
            unsigned char* der = nullptr;
            const int len = i2d_ECDSA_SIG(es.get(), &der);
            if (len <= 0) return Status{ErrorCode::internal, "cannot encode the ECDSA signature"};
            std::vector<uint8_t> out(der, der + len);
            OPENSSL_free(der);
            return out;
        }
        case TPM2_ALG_RSASSA:
        case TPM2_ALG_RSAPSS: {
            const auto& b = sig.signature.rsassa.sig;
            return std::vector<uint8_t>(b.buffer, b.buffer + b.size);
        }
        default:
            return Status{ErrorCode::device_error, "the TPM answered an unexpected signature algorithm"};
    }
}

}  // namespace keyward::tpm
