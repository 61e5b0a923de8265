#include "tpm/public_key.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "core/ecdsa_sig.hpp"
#include "core/ossl.hpp"

namespace keyward::tpm {
namespace {

constexpr TPMA_OBJECT kSigningKeyAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                              TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                              TPMA_OBJECT_SIGN_ENCRYPT;
constexpr uint32_t kDefaultRsaExponent = 65537;

Result<std::vector<uint8_t>> spki_from_params(const char* algorithm, OSSL_PARAM_BLD* bld) {
    ossl::Params params(OSSL_PARAM_BLD_to_param(bld));
    ossl::PKeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, algorithm, nullptr));
    EVP_PKEY* raw = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0)
        return Status{ErrorCode::device_error, "the TPM's public key is not a valid key"};
    ossl::PKey pkey(raw);
    unsigned char* der = nullptr;
    const int len = i2d_PUBKEY(pkey.get(), &der);
    ossl::Bytes owner(der);
    if (len <= 0) return Status{ErrorCode::internal, "cannot encode the public key"};
    return std::vector<uint8_t>(der, der + len);
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
        default: return std::nullopt;
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
    ossl::ParamBld bld(OSSL_PARAM_BLD_new());
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
        ossl::Bn n(BN_bin2bn(pub.unique.rsa.buffer, pub.unique.rsa.size, nullptr));
        ossl::Bn exp(BN_new());
        if (!n || !exp || !BN_set_word(exp.get(), e) ||
            !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) ||
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

Result<std::vector<uint8_t>> signature_bytes(const TPMT_SIGNATURE& sig) {
    switch (sig.sigAlg) {
        case TPM2_ALG_ECDSA: {
            const auto& r = sig.signature.ecdsa.signatureR;
            const auto& s = sig.signature.ecdsa.signatureS;
            std::vector<uint8_t> out;
            if (!ecdsa_rs_to_der({r.buffer, r.size}, {s.buffer, s.size}, out))
                return Status{ErrorCode::device_error, "the TPM answered an empty ECDSA signature value"};
            return out;
        }
        case TPM2_ALG_RSASSA:
        case TPM2_ALG_RSAPSS: {
            const auto& b = sig.signature.rsassa.sig;
            return std::vector<uint8_t>(b.buffer, b.buffer + b.size);
        }
        default: return Status{ErrorCode::device_error, "the TPM answered an unexpected signature algorithm"};
    }
}

}  // namespace keyward::tpm
