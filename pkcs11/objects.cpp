#include "pkcs11/objects.hpp"

#include <algorithm>
#include <array>

#include "pkcs11/encoding.hpp"
#include "core/hex.hpp"

namespace keyward::pkcs11 {
namespace {

std::vector<uint8_t> strip_leading_zeros(std::vector<uint8_t> v) {
    size_t i = 0;
    while (i + 1 < v.size() && v[i] == 0) ++i;
    v.erase(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i));
    return v;
}

std::string bool_text(CK_BBOOL b) { return b ? "true" : "false"; }

}  // namespace

CK_RV find_objects(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s, CK_ATTRIBUTE* tmpl, CK_ULONG n,
                   std::vector<CK_OBJECT_HANDLE>& out, size_t max) {
    out.clear();
    CK_RV rv = f->C_FindObjectsInit(s, tmpl, n);
    if (rv != CKR_OK) return rv;
    std::array<CK_OBJECT_HANDLE, 32> batch{};
    while (out.size() < max) {
        CK_ULONG got = 0;
        rv = f->C_FindObjects(s, batch.data(), static_cast<CK_ULONG>(std::min(batch.size(), max - out.size())), &got);
        if (rv != CKR_OK || got == 0) break;
        out.insert(out.end(), batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(got));
    }
    const CK_RV final_rv = f->C_FindObjectsFinal(s);
    return rv != CKR_OK ? rv : final_rv;
}

CK_RV find_by_label(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const std::string& label,
                    std::vector<CK_OBJECT_HANDLE>& out) {
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
    };
    return find_objects(f, s, tmpl, 2, out, 2);
}

CK_RV get_bytes(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
                std::vector<uint8_t>& out) {
    CK_ATTRIBUTE a{type, nullptr, 0};
    CK_RV rv = f->C_GetAttributeValue(s, o, &a, 1);
    if (rv != CKR_OK) return rv;
    if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION) return CKR_ATTRIBUTE_TYPE_INVALID;
    out.resize(a.ulValueLen);
    a.pValue = out.data();
    rv = f->C_GetAttributeValue(s, o, &a, 1);
    if (rv == CKR_OK) out.resize(a.ulValueLen);
    return rv;
}

CK_RV read_key_type(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, std::optional<KeyType>& type) {
    type.reset();
    CK_KEY_TYPE kt = 0;
    CK_ATTRIBUTE a{CKA_KEY_TYPE, &kt, sizeof kt};
    CK_RV rv = f->C_GetAttributeValue(s, o, &a, 1);
    if (rv != CKR_OK) return rv;
    std::vector<uint8_t> v;
    if (kt == CKK_EC) {
        rv = get_bytes(f, s, o, CKA_EC_PARAMS, v);
        if (rv == CKR_OK) type = ec_type_from_params(v);
    } else if (kt == CKK_RSA) {
        rv = get_bytes(f, s, o, CKA_MODULUS, v);
        if (rv == CKR_OK) type = rsa_key_type_for_bytes(strip_leading_zeros(std::move(v)).size());
    }
    return rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ? CKR_OK : rv;
}

CK_RV read_key(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, const std::string& label, bool with_pss,
               BackendKey& out, Status& problem) {
    std::optional<KeyType> type;
    CK_RV rv = read_key_type(f, s, priv, type);
    if (rv != CKR_OK) return rv;
    if (!type) {
        problem =
            Status{ErrorCode::unsupported_scheme,
                   "key " + label + " has a type or size keyward does not handle (EC P-256/P-384, RSA 2048-4096)"};
        return CKR_OK;
    }
    out.label = label;
    out.type = *type;
    out.schemes = schemes_for(*type, with_pss);

    std::vector<uint8_t> id;
    rv = get_bytes(f, s, priv, CKA_ID, id);
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID) return rv;

    // The public half: by CKA_ID when there is one (as libp11 pairs them), else by label.
    CK_OBJECT_CLASS pub_class = CKO_PUBLIC_KEY;
    std::vector<CK_OBJECT_HANDLE> pubs;
    if (!id.empty()) {
        CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &pub_class, sizeof pub_class}, {CKA_ID, id.data(), id.size()}};
        rv = find_objects(f, s, tmpl, 2, pubs, 1);
    } else {
        rv = find_by_label(f, s, CKO_PUBLIC_KEY, label, pubs);
    }
    if (rv != CKR_OK) return rv;

    Result<std::vector<uint8_t>> spki{std::vector<uint8_t>{}};
    if (key_type_is_ec(*type)) {
        if (pubs.empty()) {
            problem = Status{ErrorCode::device_error, "key " + label + " has no public key object on the token"};
            return CKR_OK;
        }
        std::vector<uint8_t> point;
        rv = get_bytes(f, s, pubs.front(), CKA_EC_POINT, point);
        if (rv != CKR_OK) return rv;
        spki = ec_spki(*type, point);
    } else {
        // RSA private key objects carry the public values themselves.
        const CK_OBJECT_HANDLE from = pubs.empty() ? priv : pubs.front();
        std::vector<uint8_t> n, e;
        rv = get_bytes(f, s, from, CKA_MODULUS, n);
        if (rv == CKR_OK) rv = get_bytes(f, s, from, CKA_PUBLIC_EXPONENT, e);
        if (rv != CKR_OK) return rv;
        spki = rsa_spki(n, e);
    }
    if (!spki.ok()) {
        problem = Status{spki.status().code, "key " + label + ": " + spki.status().message};
        return CKR_OK;
    }
    out.spki = std::move(spki).value();

    // Read back, not as intended: what the device says about the private half.
    struct BoolAttr {
        CK_ATTRIBUTE_TYPE type;
        const char* name;
        CK_BBOOL value;
    };
    std::array<BoolAttr, 8> flags{{
        {CKA_TOKEN, "CKA_TOKEN", CK_FALSE},
        {CKA_PRIVATE, "CKA_PRIVATE", CK_FALSE},
        {CKA_SENSITIVE, "CKA_SENSITIVE", CK_FALSE},
        {CKA_EXTRACTABLE, "CKA_EXTRACTABLE", CK_FALSE},
        {CKA_ALWAYS_SENSITIVE, "CKA_ALWAYS_SENSITIVE", CK_FALSE},
        {CKA_NEVER_EXTRACTABLE, "CKA_NEVER_EXTRACTABLE", CK_FALSE},
        {CKA_SIGN, "CKA_SIGN", CK_FALSE},
        {CKA_DECRYPT, "CKA_DECRYPT", CK_FALSE},
    }};
    std::array<CK_ATTRIBUTE, 8> tmpl{};
    for (size_t i = 0; i < flags.size(); ++i) tmpl[i] = {flags[i].type, &flags[i].value, sizeof(CK_BBOOL)};
    rv = f->C_GetAttributeValue(s, priv, tmpl.data(), static_cast<CK_ULONG>(tmpl.size()));
    // Attributes the token lacks come back as CK_UNAVAILABLE_INFORMATION, the rest are filled.
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE) return rv;
    out.attributes.clear();
    for (size_t i = 0; i < flags.size(); ++i) {
        const bool known = tmpl[i].ulValueLen == sizeof(CK_BBOOL);
        out.attributes.push_back({flags[i].name, known ? bool_text(flags[i].value) : "unavailable"});
    }
    out.attributes.push_back({"CKA_ID", to_hex(id)});
    return CKR_OK;
}

}  // namespace keyward::pkcs11
