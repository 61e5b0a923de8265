#include "pkcs11/encoding.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include <array>
#include <cstring>
#include <memory>

#include "core/ossl.hpp"

namespace keyward::pkcs11 {
namespace {

constexpr std::array<uint8_t, 10> kP256Oid{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
constexpr std::array<uint8_t, 7> kP384Oid{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

// RFC 8017 §9.2 note 1.
constexpr std::array<uint8_t, 19> kSha256Prefix{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                                0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
constexpr std::array<uint8_t, 19> kSha384Prefix{0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                                0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30};
constexpr std::array<uint8_t, 19> kSha512Prefix{0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                                0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40};

Result<std::vector<uint8_t>> spki_of(EVP_PKEY* pkey) {
    const int len = i2d_PUBKEY(pkey, nullptr);
    if (len <= 0) return Status{ErrorCode::internal, "cannot encode the public key as SubjectPublicKeyInfo"};
    std::vector<uint8_t> der(static_cast<size_t>(len));
    unsigned char* p = der.data();
    if (i2d_PUBKEY(pkey, &p) != len) return Status{ErrorCode::internal, "SubjectPublicKeyInfo encoding failed"};
    return der;
}

Result<std::vector<uint8_t>> from_params(const char* type, OSSL_PARAM* params) {
    ossl::PKeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
    EVP_PKEY* raw = nullptr;
    if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        return Status{ErrorCode::device_error, std::string("the token's ") + type + " public key is not valid"};
    ossl::PKey pkey(raw);
    return spki_of(pkey.get());
}

}  // namespace

std::span<const uint8_t> ec_params_der(KeyType type) noexcept {
    switch (type) {
        case KeyType::ec_p256: return kP256Oid;
        case KeyType::ec_p384: return kP384Oid;
        default: return {};
    }
}

std::optional<KeyType> ec_type_from_params(std::span<const uint8_t> params) noexcept {
    auto same = [&](std::span<const uint8_t> oid) {
        return params.size() == oid.size() && std::memcmp(params.data(), oid.data(), oid.size()) == 0;
    };
    if (same(kP256Oid)) return KeyType::ec_p256;
    if (same(kP384Oid)) return KeyType::ec_p384;
    return std::nullopt;
}

size_t build_digest_info(std::span<const uint8_t> digest, uint8_t* out) noexcept {
    const uint8_t* prefix = nullptr;
    switch (digest.size()) {
        case 32: prefix = kSha256Prefix.data(); break;
        case 48: prefix = kSha384Prefix.data(); break;
        case 64: prefix = kSha512Prefix.data(); break;
        default: return 0;
    }
    std::memcpy(out, prefix, kSha256Prefix.size());
    std::memcpy(out + kSha256Prefix.size(), digest.data(), digest.size());
    return kSha256Prefix.size() + digest.size();
}

Result<std::vector<uint8_t>> ec_spki(KeyType type, std::span<const uint8_t> ec_point) {
    const size_t coord = type == KeyType::ec_p256 ? 32 : type == KeyType::ec_p384 ? 48 : 0;
    if (coord == 0) return Status{ErrorCode::internal, "not an EC key type"};
    std::span<const uint8_t> point = ec_point;
    if (point.size() != 1 + 2 * coord) {
        // The standard form: a DER OCTET STRING around the uncompressed point.
        if (point.size() < 2 || point[0] != 0x04)
            return Status{ErrorCode::device_error, "CKA_EC_POINT is neither a DER OCTET STRING nor a bare point"};
        size_t len = point[1], hdr = 2;
        if (len == 0x81 && point.size() >= 3) {
            len = point[2];
            hdr = 3;
        }
        if (point.size() != hdr + len) return Status{ErrorCode::device_error, "CKA_EC_POINT has a bad DER length"};
        point = point.subspan(hdr);
    }
    if (point.size() != 1 + 2 * coord || point[0] != 0x04)
        return Status{ErrorCode::device_error, "CKA_EC_POINT is not an uncompressed point of the key's curve"};
    char group[16];
    std::strcpy(group, type == KeyType::ec_p256 ? "prime256v1" : "secp384r1");
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, const_cast<uint8_t*>(point.data()), point.size()),
        OSSL_PARAM_construct_end(),
    };
    return from_params("EC", params);
}

Result<std::vector<uint8_t>> rsa_spki(std::span<const uint8_t> modulus, std::span<const uint8_t> exponent) {
    ossl::Bn n(BN_bin2bn(modulus.data(), static_cast<int>(modulus.size()), nullptr));
    ossl::Bn e(BN_bin2bn(exponent.data(), static_cast<int>(exponent.size()), nullptr));
    ossl::ParamBld bld(OSSL_PARAM_BLD_new());
    if (!n || !e || !bld || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) ||
        !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()))
        return Status{ErrorCode::internal, "out of memory building an RSA public key"};
    ossl::Params params(OSSL_PARAM_BLD_to_param(bld.get()));
    if (!params) return Status{ErrorCode::internal, "out of memory building an RSA public key"};
    return from_params("RSA", params.get());
}

}  // namespace keyward::pkcs11
