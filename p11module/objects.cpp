#include "p11module/objects.hpp"

#include <algorithm>
#include <cstring>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "core/hex.hpp"
#include "core/key_types.hpp"
#include "core/ossl.hpp"

namespace keyward::p11module {

namespace {

std::vector<uint8_t> sha256(std::span<const uint8_t> data) {
    std::vector<uint8_t> out(SHA256_DIGEST_LENGTH);
    SHA256(data.data(), data.size(), out.data());
    return out;
}

void put(std::vector<ObjectAttribute>& out, CK_ATTRIBUTE_TYPE type, std::vector<uint8_t> value) {
    out.push_back({type, std::move(value)});
}
void put_bool(std::vector<ObjectAttribute>& out, CK_ATTRIBUTE_TYPE type, bool v) {
    put(out, type, {static_cast<uint8_t>(v ? CK_TRUE : CK_FALSE)});
}
void put_ulong(std::vector<ObjectAttribute>& out, CK_ATTRIBUTE_TYPE type, CK_ULONG v) {
    std::vector<uint8_t> bytes(sizeof v);
    std::memcpy(bytes.data(), &v, sizeof v);
    put(out, type, std::move(bytes));
}
void put_text(std::vector<ObjectAttribute>& out, CK_ATTRIBUTE_TYPE type, std::string_view text) {
    put(out, type, std::vector<uint8_t>(text.begin(), text.end()));
}

template <typename T, typename I2D>
std::vector<uint8_t> der_of(const T* object, I2D i2d) {
    const int n = i2d(object, nullptr);
    if (n <= 0) return {};
    std::vector<uint8_t> out(static_cast<size_t>(n));
    unsigned char* p = out.data();
    i2d(object, &p);
    return out;
}

std::vector<uint8_t> bn_bytes(const BIGNUM* bn) {
    std::vector<uint8_t> out(static_cast<size_t>(BN_num_bytes(bn)));
    BN_bn2bin(bn, out.data());
    return out;
}

// What the device reports about the private half, in PKCS#11 terms: SoftHSM and other
// PKCS#11 devices report CKA_ALWAYS_SENSITIVE/CKA_NEVER_EXTRACTABLE themselves; a TPM key
// made inside the TPM that can never leave it (fixedTPM, sensitiveDataOrigin) is both.
bool device_says(const ipc::KeyInfo& key, std::string_view pkcs11_name) {
    auto value = [&](std::string_view name) {
        for (const auto& a : key.attributes)
            if (a.name == name) return a.value == "true";
        return false;
    };
    return value(pkcs11_name) || (value("fixedTPM") && value("sensitiveDataOrigin"));
}

struct PublicParts {
    bool is_ec = false;
    std::vector<uint8_t> ec_params, ec_point;  // DER OID; DER OCTET STRING of the point
    std::vector<uint8_t> modulus, exponent;
    CK_ULONG modulus_bits = 0;
    size_t coordinate = 0;
};

Result<PublicParts> public_parts(std::span<const uint8_t> spki) {
    const unsigned char* p = spki.data();
    auto* raw = d2i_X509_PUBKEY(nullptr, &p, static_cast<long>(spki.size()));
    if (!raw || p != spki.data() + spki.size()) {
        X509_PUBKEY_free(raw);
        return Status{ErrorCode::protocol_error, "the agent sent a public key that does not parse"};
    }
    ossl::Ptr<X509_PUBKEY, X509_PUBKEY_free> pub(raw);
    ossl::PKey pkey(X509_PUBKEY_get(pub.get()));
    if (!pkey) return Status{ErrorCode::protocol_error, "the agent sent an unusable public key"};
    PublicParts out;
    if (EVP_PKEY_get_base_id(pkey.get()) == EVP_PKEY_EC) {
        out.is_ec = true;
        const unsigned char* point = nullptr;
        int point_len = 0;
        X509_ALGOR* alg = nullptr;
        X509_PUBKEY_get0_param(nullptr, &point, &point_len, &alg, pub.get());
        const ASN1_OBJECT* alg_oid = nullptr;
        int param_type = 0;
        const void* param = nullptr;
        X509_ALGOR_get0(&alg_oid, &param_type, &param, alg);
        if (param_type != V_ASN1_OBJECT || point_len <= 0)
            return Status{ErrorCode::protocol_error, "EC public key without a named curve"};
        out.ec_params = der_of(static_cast<const ASN1_OBJECT*>(param), i2d_ASN1_OBJECT);
        ossl::Asn1String octets(ASN1_OCTET_STRING_new());
        if (!octets || !ASN1_OCTET_STRING_set(octets.get(), point, point_len)) throw std::bad_alloc();
        out.ec_point = der_of(octets.get(), i2d_ASN1_OCTET_STRING);
        const int bits = EVP_PKEY_get_bits(pkey.get());
        out.coordinate = static_cast<size_t>((bits + 7) / 8);
    } else if (EVP_PKEY_get_base_id(pkey.get()) == EVP_PKEY_RSA) {
        BIGNUM* n = nullptr;
        BIGNUM* e = nullptr;
        EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_RSA_N, &n);
        EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_RSA_E, &e);
        ossl::Bn n_owner(n), e_owner(e);
        if (!n || !e) return Status{ErrorCode::protocol_error, "RSA public key without modulus or exponent"};
        out.modulus = bn_bytes(n);
        out.exponent = bn_bytes(e);
        out.modulus_bits = static_cast<CK_ULONG>(BN_num_bits(n));
    } else {
        return Status{ErrorCode::protocol_error, "the agent sent a key that is neither EC nor RSA"};
    }
    return out;
}

void put_public_parts(std::vector<ObjectAttribute>& a, const PublicParts& parts) {
    if (parts.is_ec) {
        put(a, CKA_EC_PARAMS, parts.ec_params);
        put(a, CKA_EC_POINT, parts.ec_point);
    } else {
        put(a, CKA_MODULUS, parts.modulus);
        put(a, CKA_PUBLIC_EXPONENT, parts.exponent);
        put_ulong(a, CKA_MODULUS_BITS, parts.modulus_bits);
    }
}

void put_storage(std::vector<ObjectAttribute>& a, CK_OBJECT_CLASS cls, std::string_view label,
                 const std::vector<uint8_t>& id) {
    put_ulong(a, CKA_CLASS, cls);
    put_bool(a, CKA_TOKEN, true);
    // Nothing is behind a login: the agent's policy decides who may sign (docs/pkcs11-module.md).
    put_bool(a, CKA_PRIVATE, false);
    put_bool(a, CKA_MODIFIABLE, false);
    put_bool(a, CKA_COPYABLE, false);
    put_bool(a, CKA_DESTROYABLE, false);
    put_text(a, CKA_LABEL, label);
    put(a, CKA_ID, id);
}

// What the private and the public key object of one agent key are both built from.
struct KeyFacts {
    const ipc::KeyInfo& key;
    const PublicParts& parts;
    const std::vector<uint8_t>& id;
    const std::string& spki_hash;
    const std::vector<uint8_t>& subject;
    bool made_on_device;
};

struct Flag {
    CK_ATTRIBUTE_TYPE type;
    bool value;
};

// A key object: storage attributes, the common key attributes (PKCS#11 v2.40 §4.7) and the
// public key, around `usage`, the flags that say what this class of object may be used for.
Object key_object(CK_OBJECT_CLASS object_class, std::string_view identity_prefix, const KeyFacts& facts,
                  std::initializer_list<Flag> usage) {
    Object o;
    o.object_class = object_class;
    o.identity = std::string(identity_prefix) + ":" + facts.key.name + ":" + facts.spki_hash;
    o.key_name = facts.key.name;
    auto& a = o.attributes;
    put_storage(a, object_class, facts.key.name, facts.id);
    put_ulong(a, CKA_KEY_TYPE, facts.parts.is_ec ? CKK_EC : CKK_RSA);
    put(a, CKA_SUBJECT, facts.subject);
    put(a, CKA_START_DATE, {});
    put(a, CKA_END_DATE, {});
    put_bool(a, CKA_LOCAL, facts.made_on_device);
    put_ulong(a, CKA_KEY_GEN_MECHANISM, CK_UNAVAILABLE_INFORMATION);
    for (const Flag& flag : usage) put_bool(a, flag.type, flag.value);
    put(a, CKA_PUBLIC_KEY_INFO, facts.key.spki);
    put_public_parts(a, facts.parts);
    return o;
}

struct ParsedCert {
    std::vector<uint8_t> subject, issuer, serial, spki;
    std::string common_name;
};

Result<ParsedCert> parse_cert(std::span<const uint8_t> der) {
    const unsigned char* p = der.data();
    ossl::Cert cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
    if (!cert || p != der.data() + der.size())
        return Status{ErrorCode::protocol_error, "the agent sent a certificate that does not parse"};
    ParsedCert out;
    out.subject = der_of(X509_get_subject_name(cert.get()), i2d_X509_NAME);
    out.issuer = der_of(X509_get_issuer_name(cert.get()), i2d_X509_NAME);
    out.serial = der_of(X509_get0_serialNumber(cert.get()), i2d_ASN1_INTEGER);
    out.spki = der_of(X509_get_X509_PUBKEY(cert.get()), i2d_X509_PUBKEY);
    char cn[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn, sizeof cn) > 0)
        out.common_name = cn;
    return out;
}

Object certificate_object(std::span<const uint8_t> der, const ParsedCert& cert, std::string identity,
                          std::string key_name, std::string_view label, const std::vector<uint8_t>& id, bool is_leaf) {
    Object o;
    o.object_class = CKO_CERTIFICATE;
    o.identity = std::move(identity);
    o.key_name = std::move(key_name);
    auto& a = o.attributes;
    put_storage(a, CKO_CERTIFICATE, label, id);
    put_ulong(a, CKA_CERTIFICATE_TYPE, CKC_X_509);
    put_bool(a, CKA_TRUSTED, false);
    // 1 = token user, 2 = authority (PKCS#11 v2.40 §4.6.2).
    put_ulong(a, CKA_CERTIFICATE_CATEGORY, is_leaf ? 1 : 2);
    put(a, CKA_SUBJECT, cert.subject);
    put(a, CKA_ISSUER, cert.issuer);
    put(a, CKA_SERIAL_NUMBER, cert.serial);
    put(a, CKA_VALUE, std::vector<uint8_t>(der.begin(), der.end()));
    put(a, CKA_START_DATE, {});
    put(a, CKA_END_DATE, {});
    put_ulong(a, CKA_JAVA_MIDP_SECURITY_DOMAIN, 0);
    return o;
}

}  // namespace

const ObjectAttribute* Object::find(CK_ATTRIBUTE_TYPE type) const noexcept {
    for (const auto& a : attributes)
        if (a.type == type) return &a;
    return nullptr;
}

bool Object::matches(std::span<const CK_ATTRIBUTE> tmpl) const noexcept {
    for (const auto& t : tmpl) {
        const ObjectAttribute* a = find(t.type);
        if (!a || a->value.size() != t.ulValueLen) return false;
        if (t.ulValueLen && (!t.pValue || std::memcmp(a->value.data(), t.pValue, t.ulValueLen) != 0)) return false;
    }
    return true;
}

std::vector<uint8_t> key_id_for_spki(std::span<const uint8_t> spki) {
    auto digest = sha256(spki);
    digest.resize(kKeyIdSize);
    return digest;
}

Result<std::vector<Object>> objects_for_key(const ipc::KeyInfo& key) {
    auto parts = public_parts(key.spki);
    if (!parts.ok()) return Status{parts.status().code, "key " + key.name + ": " + parts.status().message};
    const auto id = key_id_for_spki(key.spki);
    const std::string spki_hash = to_hex(sha256(key.spki));

    std::vector<ParsedCert> certs;
    for (const auto& der : key.certificates) {
        auto c = parse_cert(der);
        if (!c.ok()) return Status{c.status().code, "key " + key.name + ": " + c.status().message};
        certs.push_back(std::move(c).value());
    }
    const std::vector<uint8_t> subject = certs.empty() ? std::vector<uint8_t>{} : certs.front().subject;

    // The agent does not pass CKA_LOCAL on; a key that was always sensitive and never
    // extractable was made on its device (an imported key is neither).
    const bool made_on_device = device_says(key, "CKA_ALWAYS_SENSITIVE") && device_says(key, "CKA_NEVER_EXTRACTABLE");
    const KeyFacts facts{key, parts.value(), id, spki_hash, subject, made_on_device};
    std::vector<Object> out;
    Object priv = key_object(CKO_PRIVATE_KEY, "private", facts,
                             {{CKA_SENSITIVE, true},
                              {CKA_EXTRACTABLE, false},
                              {CKA_ALWAYS_SENSITIVE, device_says(key, "CKA_ALWAYS_SENSITIVE")},
                              {CKA_NEVER_EXTRACTABLE, device_says(key, "CKA_NEVER_EXTRACTABLE")},
                              {CKA_SIGN, true},
                              {CKA_SIGN_RECOVER, false},
                              {CKA_DECRYPT, false},
                              {CKA_UNWRAP, false},
                              {CKA_DERIVE, false},
                              {CKA_WRAP_WITH_TRUSTED, false},
                              {CKA_ALWAYS_AUTHENTICATE, false}});
    priv.is_ec = parts->is_ec;
    priv.signature_size = parts->is_ec ? 2 * parts->coordinate : parts->modulus.size();
    priv.schemes = key.schemes;
    out.push_back(std::move(priv));
    // The module signs only; verifying is for the caller's own library.
    out.push_back(key_object(CKO_PUBLIC_KEY, "public", facts,
                             {{CKA_VERIFY, false},
                              {CKA_VERIFY_RECOVER, false},
                              {CKA_ENCRYPT, false},
                              {CKA_WRAP, false},
                              {CKA_DERIVE, false},
                              {CKA_TRUSTED, false}}));

    for (size_t i = 0; i < certs.size(); ++i) {
        const auto& der = key.certificates[i];
        const std::string cert_hash = to_hex(sha256(der));
        if (i == 0) {
            out.push_back(
                certificate_object(der, certs[i], "cert:" + key.name + ":" + cert_hash, key.name, key.name, id, true));
        } else {
            // A CA certificate is the same object whichever keys it comes with.
            const std::string label = certs[i].common_name.empty() ? "keyward chain certificate" : certs[i].common_name;
            out.push_back(certificate_object(der, certs[i], "chain:" + cert_hash, {}, label,
                                             key_id_for_spki(certs[i].spki), false));
        }
    }
    return out;
}

}  // namespace keyward::p11module
