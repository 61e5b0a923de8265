#include "tpm/key_file.hpp"

#include <algorithm>
#include <cstring>

#include <openssl/asn1t.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <tss2/tss2_mu.h>

#include "core/ossl.hpp"

namespace keyward::tpm {
namespace {

constexpr char kPemName[] = "TSS2 PRIVATE KEY";
constexpr char kLoadableKeyOid[] = "2.23.133.10.1.3";
constexpr char kImportableKeyOid[] = "2.23.133.10.1.4";

// TPMKey (see key_file.hpp) as an OpenSSL ASN.1 template. policy and secret are decoded
// only to refuse them by name: keyward cannot satisfy a policy, and a secret means an
// importable key.
struct TPMKey {
    ASN1_OBJECT* type;
    ASN1_BOOLEAN empty_auth;  // -1: absent (the key has an auth value)
    ASN1_TYPE* policy;
    ASN1_OCTET_STRING* secret;
    ASN1_INTEGER* parent;
    ASN1_OCTET_STRING* pubkey;
    ASN1_OCTET_STRING* privkey;
};

ASN1_SEQUENCE(TPMKey) =
    {
        ASN1_SIMPLE(TPMKey, type, ASN1_OBJECT),          ASN1_EXP_OPT(TPMKey, empty_auth, ASN1_BOOLEAN, 0),
        ASN1_EXP_OPT(TPMKey, policy, ASN1_ANY, 1),       ASN1_EXP_OPT(TPMKey, secret, ASN1_OCTET_STRING, 2),
        ASN1_SIMPLE(TPMKey, parent, ASN1_INTEGER),       ASN1_SIMPLE(TPMKey, pubkey, ASN1_OCTET_STRING),
        ASN1_SIMPLE(TPMKey, privkey, ASN1_OCTET_STRING),
} ASN1_SEQUENCE_END(TPMKey)

        IMPLEMENT_ASN1_FUNCTIONS(TPMKey)

            using TPMKeyPtr = ossl::Ptr<TPMKey, TPMKey_free>;

bool oid_is(const ASN1_OBJECT* oid, const char* dotted) {
    ossl::Ptr<ASN1_OBJECT, ASN1_OBJECT_free> want(OBJ_txt2obj(dotted, 1));
    return want && OBJ_cmp(oid, want.get()) == 0;
}

std::span<const uint8_t> contents(const ASN1_OCTET_STRING* s) {
    return {ASN1_STRING_get0_data(s), static_cast<size_t>(ASN1_STRING_length(s))};
}

bool set_contents(ASN1_OCTET_STRING* s, std::span<const uint8_t> bytes) {
    return ASN1_OCTET_STRING_set(s, bytes.data(), static_cast<int>(bytes.size())) == 1;
}

Status bad(const std::string& why) {
    return Status{ErrorCode::invalid_argument, "not a usable TSS2 PRIVATE KEY: " + why};
}

// PEM in, DER out; bytes that are no PEM are taken as DER.
std::vector<uint8_t> der_of(std::span<const uint8_t> bytes) {
    static constexpr std::string_view kBegin = "-----BEGIN ";
    const bool looks_pem = std::search(bytes.begin(), bytes.end(), kBegin.begin(), kBegin.end()) != bytes.end();
    if (!looks_pem) return {bytes.begin(), bytes.end()};
    ossl::Bio bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
    if (!bio) return {};
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    std::vector<uint8_t> der;
    // Skip other blocks (a file may carry a certificate too).
    while (PEM_read_bio(bio.get(), &name, &header, &data, &len) == 1) {
        const bool ours = std::strcmp(name, kPemName) == 0;
        if (ours) der.assign(data, data + len);
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_clear_free(data, static_cast<size_t>(len));
        if (ours) break;
    }
    return der;
}

}  // namespace

Result<KeyFile> parse_key_file(std::span<const uint8_t> bytes) {
    const std::vector<uint8_t> der = der_of(bytes);
    if (der.empty()) return bad("no \"" + std::string(kPemName) + "\" PEM block or DER structure found");
    const unsigned char* p = der.data();
    TPMKeyPtr asn(d2i_TPMKey(nullptr, &p, static_cast<long>(der.size())));
    if (!asn) return bad("not a DER TPMKey SEQUENCE (type, emptyAuth, parent, pubkey, privkey)");
    if (p != der.data() + der.size()) return bad("bytes after the DER SEQUENCE");
    if (oid_is(asn->type, kImportableKeyOid))
        return bad("an importable (duplicated) key; load it with tpm2_import first");
    if (!oid_is(asn->type, kLoadableKeyOid)) return bad("type is not 2.23.133.10.1.3 (loadable key)");
    if (asn->policy) return bad("it needs a policy session, which keyward does not support");
    if (asn->secret) return bad("it carries an import secret (not a loadable key)");
    KeyFile key;
    key.empty_auth = asn->empty_auth != -1 && asn->empty_auth != 0;  // absent: the key has an auth value
    uint64_t handle = 0;
    if (ASN1_INTEGER_get_uint64(&handle, asn->parent) != 1 || handle > 0xFFFFFFFFu) return bad("bad parent handle");
    key.parent = static_cast<TPM2_HANDLE>(handle);
    const auto pub = contents(asn->pubkey);
    const auto priv = contents(asn->privkey);
    size_t offset = 0;
    if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(pub.data(), pub.size(), &offset, &key.pub) != TSS2_RC_SUCCESS ||
        offset != pub.size())
        return bad("the public part is not a TPM2B_PUBLIC");
    offset = 0;
    if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(priv.data(), priv.size(), &offset, &key.priv) != TSS2_RC_SUCCESS ||
        offset != priv.size())
        return bad("the private part is not a TPM2B_PRIVATE");
    return key;
}

std::vector<uint8_t> encode_key_file_der(const KeyFile& key) {
    std::vector<uint8_t> pub(sizeof(TPM2B_PUBLIC)), priv(sizeof(TPM2B_PRIVATE));
    size_t pub_len = 0, priv_len = 0;
    if (Tss2_MU_TPM2B_PUBLIC_Marshal(&key.pub, pub.data(), pub.size(), &pub_len) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_PRIVATE_Marshal(&key.priv, priv.data(), priv.size(), &priv_len) != TSS2_RC_SUCCESS)
        return {};
    pub.resize(pub_len);
    priv.resize(priv_len);

    TPMKeyPtr asn(TPMKey_new());
    if (!asn) return {};
    asn->type = OBJ_txt2obj(kLoadableKeyOid, 1);
    // tpm2-openssl and the kernel write emptyAuth only when TRUE; absent means FALSE.
    asn->empty_auth = key.empty_auth ? 0xFF : -1;
    if (!asn->type || !ASN1_INTEGER_set_uint64(asn->parent, key.parent) || !set_contents(asn->pubkey, pub) ||
        !set_contents(asn->privkey, priv))
        return {};
    unsigned char* der = nullptr;
    const int len = i2d_TPMKey(asn.get(), &der);
    ossl::Bytes owner(der);
    if (len <= 0) return {};
    return std::vector<uint8_t>(der, der + len);
}

std::string encode_key_file_pem(const KeyFile& key) {
    const std::vector<uint8_t> der = encode_key_file_der(key);
    if (der.empty()) return {};
    ossl::Bio bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio(bio.get(), kPemName, "", der.data(), static_cast<long>(der.size())) <= 0) return {};
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(len));
}

}  // namespace keyward::tpm
