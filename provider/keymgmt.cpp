// KEYMGMT for EC, RSA and RSA-PSS keys held by the agent.
//
// What OpenSSL does with these (3.0):
// - the STORE and the DECODER hand over a finished key object by reference (load);
// - SSL_CTX_use_PrivateKey / X509_check_private_key import the *certificate's* public
//   key into this keymgmt and call match(), so import accepts public-only data even
//   when a key pair was asked for;
// - a signature fetched from another provider (usually the default one, tried first)
//   asks us to export the whole key pair: we refuse whenever the private half is
//   requested of an agent key, which makes OpenSSL fall back to our own SIGNATURE.
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>

#include "provider/algorithms.hpp"
#include "provider/dispatch.hpp"
#include "provider/guard.hpp"
#include "provider/key.hpp"

namespace keyward::provider {

namespace {

KeyObject* as_key(void* keydata) { return static_cast<KeyObject*>(keydata); }

template <KeyKind K>
void* km_new(void* provctx) noexcept {
    return new_object<KeyObject>(provctx, KEYWARD_HERE, [](KeyObject& key) { key.kind = K; });
}

void km_free(void* keydata) noexcept { delete as_key(keydata); }

// `reference` points at a KeyObject* that the STORE or DECODER created; we take it over
// and clear their pointer so they do not free it after the callback.
template <KeyKind K>
void* km_load(const void* reference, size_t reference_size) noexcept {
    if (reference == nullptr || reference_size != sizeof(KeyObject*)) return nullptr;
    auto** slot = static_cast<KeyObject**>(const_cast<void*>(reference));
    KeyObject* key = *slot;
    if (key == nullptr || key->kind != K) return nullptr;
    *slot = nullptr;
    return key;
}

int km_has(const void* keydata, int selection) noexcept {
    const auto* key = static_cast<const KeyObject*>(keydata);
    if (key == nullptr) return 0;
    bool ok = true;
    if ((selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0) ok = ok && key->has_public();
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0) ok = ok && key->has_public();
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0) ok = ok && key->has_private();
    return ok ? 1 : 0;
}

int km_validate(const void* keydata, int selection, int /*checktype*/) noexcept { return km_has(keydata, selection); }

template <KeyKind K>
int km_import(void* keydata, int selection, const OSSL_PARAM params[]) noexcept {
    KeyObject* key = as_key(keydata);
    if (key == nullptr) return 0;
    return guard(key->provider, KEYWARD_HERE, 0, [&] {
        if (!key->name.empty()) return 0;  // an agent key's public half is fixed
        // Someone else's private key: we could hold only its public half, and a signature
        // operation of ours would then be chosen for it and fail. Refusing makes OpenSSL
        // use the provider the key came from.
        for (const char* secret : {OSSL_PKEY_PARAM_PRIV_KEY, OSSL_PKEY_PARAM_RSA_D})
            if (OSSL_PARAM_locate_const(params, secret) != nullptr) return 0;
        int what = 0;
        if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0)
            what = EVP_PKEY_PUBLIC_KEY;  // asked for a pair, given a public key: take what there is
        else if ((selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0) what = EVP_PKEY_KEY_PARAMETERS;
        else return 0;
        std::string type(key_kind_type_name(K));
        ERR_set_mark();
        EVP_PKEY_CTX* pctx =
            EVP_PKEY_CTX_new_from_name(key->provider->libctx(), type.c_str(), ProviderContext::kDefaultProps);
        EVP_PKEY* pub = nullptr;
        int ok = pctx != nullptr && EVP_PKEY_fromdata_init(pctx) == 1 &&
                 EVP_PKEY_fromdata(pctx, &pub, what, const_cast<OSSL_PARAM*>(params)) == 1;
        EVP_PKEY_CTX_free(pctx);
        if (!ok) {
            // OpenSSL tries the other direction (exporting our key instead) when this fails.
            ERR_pop_to_mark();
            return 0;
        }
        ERR_clear_last_mark();
        key->pub.reset(pub);
        return 1;
    });
}

int km_export(void* keydata, int selection, OSSL_CALLBACK* cb, void* cbarg) noexcept {
    KeyObject* key = as_key(keydata);
    if (key == nullptr || !key->has_public()) return 0;
    return guard(key->provider, KEYWARD_HERE, 0, [&] {
        if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 && key->has_private()) {
            key->provider->debug("refusing to export the private half of key " + key->name);
            return 0;
        }
        int what = (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0 ? EVP_PKEY_PUBLIC_KEY : EVP_PKEY_KEY_PARAMETERS;
        OSSL_PARAM* params = nullptr;
        if (EVP_PKEY_todata(key->pub.get(), what, &params) != 1) return 0;
        int ok = cb(params, cbarg);
        OSSL_PARAM_free(params);
        return ok;
    });
}

// An explicit curve's domain parameters: accepted by import and answered by get_params alike.
#define KEYWARD_EC_DOMAIN_PARAMS                                                                      \
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_P, nullptr, 0), OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_A, nullptr, 0), \
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_B, nullptr, 0),                                              \
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_EC_GENERATOR, nullptr, 0),                            \
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_ORDER, nullptr, 0), OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_COFACTOR, nullptr, 0)

// The public parameters OpenSSL's default provider takes for each key type.
template <KeyKind K>
const OSSL_PARAM* km_types(int /*selection*/) noexcept {
    static const OSSL_PARAM ec[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, nullptr, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, nullptr, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, nullptr, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_FIELD_TYPE, nullptr, 0),
        KEYWARD_EC_DOMAIN_PARAMS,
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_EC_SEED, nullptr, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, nullptr, 0),
        OSSL_PARAM_END,
    };
    static const OSSL_PARAM rsa[] = {
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, nullptr, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, nullptr, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_RSA_DIGEST, nullptr, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_RSA_MASKGENFUNC, nullptr, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_RSA_MGF1_DIGEST, nullptr, 0),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_RSA_PSS_SALTLEN, nullptr),
        OSSL_PARAM_END,
    };
    return K == KeyKind::ec ? ec : rsa;
}

int km_match(const void* keydata1, const void* keydata2, int selection) noexcept {
    const auto* a = static_cast<const KeyObject*>(keydata1);
    const auto* b = static_cast<const KeyObject*>(keydata2);
    if (a == nullptr || b == nullptr || !a->has_public() || !b->has_public()) return 0;
    return guard(a->provider, KEYWARD_HERE, 0, [&] {
        ERR_set_mark();
        int r;
        if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0) r = EVP_PKEY_eq(a->pub.get(), b->pub.get());
        else if ((selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0 && a->kind == KeyKind::ec)
            r = EVP_PKEY_parameters_eq(a->pub.get(), b->pub.get());
        else r = a->kind == b->kind ? 1 : 0;
        ERR_pop_to_mark();
        return r == 1 ? 1 : 0;
    });
}

// Every public parameter (bits, security-bits, max-size, group, encoded public key, n,
// e, default digest, ...) is answered by the default provider's copy of the key.
int km_get_params(void* keydata, OSSL_PARAM params[]) noexcept {
    KeyObject* key = as_key(keydata);
    if (key == nullptr || !key->has_public()) return 0;
    return guard(key->provider, KEYWARD_HERE, 0, [&] { return EVP_PKEY_get_params(key->pub.get(), params); });
}

// What OpenSSL asks of every key when it loads one: sizes and the default digest.
#define KEYWARD_KEY_SIZE_PARAMS                                                                            \
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, nullptr), OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, nullptr), \
        OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, nullptr),                                                 \
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, nullptr, 0)

template <KeyKind K>
const OSSL_PARAM* km_gettable_params(void* /*provctx*/) noexcept {
    static const OSSL_PARAM ec[] = {
        KEYWARD_KEY_SIZE_PARAMS,
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, nullptr, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, nullptr, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, nullptr, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_FIELD_TYPE, nullptr, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, nullptr, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, nullptr, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_X, nullptr, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_Y, nullptr, 0),
        KEYWARD_EC_DOMAIN_PARAMS,
        OSSL_PARAM_END,
    };
    static const OSSL_PARAM rsa[] = {
        KEYWARD_KEY_SIZE_PARAMS,
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_MANDATORY_DIGEST, nullptr, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, nullptr, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, nullptr, 0),
        OSSL_PARAM_END,
    };
    return K == KeyKind::ec ? ec : rsa;
}

template <KeyKind K>
const char* km_query_operation_name(int operation_id) noexcept {
    if (operation_id == OSSL_OP_SIGNATURE) return K == KeyKind::ec ? "ECDSA" : "RSA";
    return nullptr;
}

void* km_dup(const void* keydata_from, int selection) noexcept {
    const auto* from = static_cast<const KeyObject*>(keydata_from);
    if (from == nullptr) return nullptr;
    return guard(from->provider, KEYWARD_HERE, static_cast<void*>(nullptr), [&]() -> void* {
        auto key = std::make_unique<KeyObject>();
        key->provider = from->provider;
        key->kind = from->kind;
        if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0) {
            key->name = from->name;
            key->reference_confirmed = from->reference_confirmed;
        }
        if (from->pub && (selection & (OSSL_KEYMGMT_SELECT_KEYPAIR | OSSL_KEYMGMT_SELECT_ALL_PARAMETERS)) != 0) {
            if (EVP_PKEY_up_ref(from->pub.get()) != 1) return nullptr;
            key->pub.reset(from->pub.get());
        }
        return key.release();
    });
}

}  // namespace

#define KEYWARD_KEYMGMT_TABLE(K)                                                                                      \
    {                                                                                                                 \
        KEYWARD_FN(OSSL_FUNC_KEYMGMT_NEW, km_new<K>), KEYWARD_FN(OSSL_FUNC_KEYMGMT_FREE, km_free),                    \
            KEYWARD_FN(OSSL_FUNC_KEYMGMT_LOAD, km_load<K>), KEYWARD_FN(OSSL_FUNC_KEYMGMT_HAS, km_has),                \
            KEYWARD_FN(OSSL_FUNC_KEYMGMT_VALIDATE, km_validate), KEYWARD_FN(OSSL_FUNC_KEYMGMT_MATCH, km_match),       \
            KEYWARD_FN(OSSL_FUNC_KEYMGMT_IMPORT, km_import<K>),                                                       \
            KEYWARD_FN(OSSL_FUNC_KEYMGMT_IMPORT_TYPES, km_types<K>), KEYWARD_FN(OSSL_FUNC_KEYMGMT_EXPORT, km_export), \
            KEYWARD_FN(OSSL_FUNC_KEYMGMT_EXPORT_TYPES, km_types<K>),                                                  \
            KEYWARD_FN(OSSL_FUNC_KEYMGMT_GET_PARAMS, km_get_params),                                                  \
            KEYWARD_FN(OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, km_gettable_params<K>),                                     \
            KEYWARD_FN(OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, km_query_operation_name<K>),                           \
            KEYWARD_FN(OSSL_FUNC_KEYMGMT_DUP, km_dup), KEYWARD_FN_END,                                                \
    }

const OSSL_DISPATCH keymgmt_ec_functions[] = KEYWARD_KEYMGMT_TABLE(KeyKind::ec);
const OSSL_DISPATCH keymgmt_rsa_functions[] = KEYWARD_KEYMGMT_TABLE(KeyKind::rsa);
const OSSL_DISPATCH keymgmt_rsa_pss_functions[] = KEYWARD_KEYMGMT_TABLE(KeyKind::rsa_pss);

}  // namespace keyward::provider
