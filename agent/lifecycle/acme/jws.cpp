#include "agent/lifecycle/acme/jws.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "agent/lifecycle/acme/base64url.hpp"
#include "core/ossl.hpp"

namespace keyward::acme {

namespace {

using PkeyPtr = ossl::PKey;
using BnPtr = ossl::Bn;

std::string bn_b64(const BIGNUM* bn, int width) {
    int len = width > 0 ? width : BN_num_bytes(bn);
    std::vector<uint8_t> buf(static_cast<size_t>(len));
    if (BN_bn2binpad(bn, buf.data(), len) != len) return {};
    return base64url_encode(buf);
}

BnPtr get_bn(const EVP_PKEY* key, const char* name) {
    BIGNUM* bn = nullptr;
    if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) return nullptr;
    return BnPtr(bn);
}

}  // namespace

std::string jwk_thumbprint(const nlohmann::json& jwk) {
    nlohmann::json canonical;  // std::map ordering == lexicographic member order
    auto kty = jwk.find("kty");
    if (kty == jwk.end() || !kty->is_string()) return {};
    const char* ec_members[] = {"crv", "kty", "x", "y"};
    const char* rsa_members[] = {"e", "kty", "n"};
    bool ec = *kty == "EC";
    for (const char* m : ec ? std::span<const char* const>(ec_members) : std::span<const char* const>(rsa_members)) {
        auto it = jwk.find(m);
        if (it == jwk.end() || !it->is_string()) return {};
        canonical[m] = *it;
    }
    std::string text = canonical.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_Digest(text.data(), text.size(), md, &md_len, EVP_sha256(), nullptr) != 1) return {};
    return base64url_encode(std::span<const uint8_t>(md, md_len));
}

Result<AccountKeyForm> account_key_form(std::span<const uint8_t> spki) {
    const unsigned char* p = spki.data();
    PkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())));
    if (!key || p != spki.data() + spki.size())
        return Status{ErrorCode::invalid_argument, "account key: the device returned an unreadable public key"};
    AccountKeyForm form;
    if (EVP_PKEY_is_a(key.get(), "EC")) {
        char group[64] = {};
        size_t glen = 0;
        if (EVP_PKEY_get_utf8_string_param(key.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &glen) != 1)
            return Status{ErrorCode::invalid_argument, "account key: EC key without a named curve"};
        std::string curve(group, glen);
        if (curve == "prime256v1" || curve == "P-256") {
            form = {"ES256", Scheme::ecdsa_secp256r1_sha256, "SHA256", 32, {}, {}};
            form.jwk["crv"] = "P-256";
        } else if (curve == "secp384r1" || curve == "P-384") {
            form = {"ES384", Scheme::ecdsa_secp384r1_sha384, "SHA384", 48, {}, {}};
            form.jwk["crv"] = "P-384";
        } else {
            return Status{ErrorCode::invalid_argument,
                          "account key: curve " + curve + " has no JWS algorithm here (use ec-p256 or ec-p384)"};
        }
        BnPtr x = get_bn(key.get(), OSSL_PKEY_PARAM_EC_PUB_X);
        BnPtr y = get_bn(key.get(), OSSL_PKEY_PARAM_EC_PUB_Y);
        if (!x || !y) return Status{ErrorCode::invalid_argument, "account key: cannot read the EC point"};
        form.jwk["kty"] = "EC";
        form.jwk["x"] = bn_b64(x.get(), static_cast<int>(form.ec_coordinate));
        form.jwk["y"] = bn_b64(y.get(), static_cast<int>(form.ec_coordinate));
    } else if (EVP_PKEY_is_a(key.get(), "RSA")) {
        if (EVP_PKEY_get_bits(key.get()) < 2048)
            return Status{ErrorCode::invalid_argument, "account key: RSA keys below 2048 bits are refused"};
        BnPtr n = get_bn(key.get(), OSSL_PKEY_PARAM_RSA_N);
        BnPtr e = get_bn(key.get(), OSSL_PKEY_PARAM_RSA_E);
        if (!n || !e) return Status{ErrorCode::invalid_argument, "account key: cannot read the RSA modulus"};
        form = {"RS256", Scheme::rsa_pkcs1_sha256, "SHA256", 0, {}, {}};
        form.jwk["kty"] = "RSA";
        form.jwk["n"] = bn_b64(n.get(), 0);
        form.jwk["e"] = bn_b64(e.get(), 0);
    } else {
        return Status{ErrorCode::invalid_argument,
                      "account key: only EC P-256/P-384 and RSA keys can sign ACME requests"};
    }
    form.thumbprint = jwk_thumbprint(form.jwk);
    if (form.thumbprint.empty()) return Status{ErrorCode::internal, "account key: cannot compute the JWK thumbprint"};
    return form;
}

Result<std::string> make_jws(const nlohmann::json& protected_header, std::string_view payload,
                             const JwsSigner& signer) {
    std::string header_b64 =
        base64url_encode(protected_header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    std::string payload_b64 = payload.empty() ? std::string() : base64url_encode(payload);
    std::string signing_input = header_b64 + "." + payload_b64;
    Result<std::vector<uint8_t>> sig = signer(signing_input);
    if (!sig.ok()) return sig.status();
    nlohmann::json body;
    body["protected"] = header_b64;
    body["payload"] = payload_b64;
    body["signature"] = base64url_encode(sig.value());
    return body.dump();
}

}  // namespace keyward::acme
