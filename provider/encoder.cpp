// ENCODER: SubjectPublicKeyInfo (DER and PEM) for our keys, e.g.
// `openssl pkey -in keyward:NAME -pubout`, and the public key that `openssl req` puts
// into a CSR. Private keys are never encoded: there is nothing to encode.
#include <openssl/bio.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "provider/algorithms.hpp"
#include "provider/dispatch.hpp"
#include "provider/guard.hpp"
#include "provider/key.hpp"

namespace keyward::provider {

namespace {

enum class Output { der, pem };

struct EncoderCtx {
    ProviderContext* provider = nullptr;
};

void* enc_newctx(void* provctx) noexcept {
    return new_object<EncoderCtx>(provctx, KEYWARD_HERE, [](EncoderCtx&) {});
}

void enc_freectx(void* vctx) noexcept { delete static_cast<EncoderCtx*>(vctx); }

int enc_does_selection(void* /*provctx*/, int selection) noexcept {
    return (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0 && (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) == 0 ? 1
                                                                                                                   : 0;
}

// Used when the key comes from another provider's keymgmt: we import its public half.
template <KeyKind K>
void* enc_import_object(void* vctx, int selection, const OSSL_PARAM params[]) noexcept {
    auto* ctx = static_cast<EncoderCtx*>(vctx);
    if (ctx == nullptr) return nullptr;
    return guard(ctx->provider, KEYWARD_HERE, static_cast<void*>(nullptr), [&]() -> void* {
        std::string type(key_kind_type_name(K));
        EVP_PKEY_CTX* pctx =
            EVP_PKEY_CTX_new_from_name(ctx->provider->libctx(), type.c_str(), ProviderContext::kDefaultProps);
        EVP_PKEY* pub = nullptr;
        bool ok = pctx != nullptr && EVP_PKEY_fromdata_init(pctx) == 1 &&
                  EVP_PKEY_fromdata(pctx, &pub, EVP_PKEY_PUBLIC_KEY, const_cast<OSSL_PARAM*>(params)) == 1;
        EVP_PKEY_CTX_free(pctx);
        (void)selection;
        if (!ok) return nullptr;
        auto key = std::make_unique<KeyObject>();
        key->provider = ctx->provider;
        key->kind = K;
        key->pub.reset(pub);
        return key.release();
    });
}

void enc_free_object(void* obj) noexcept { delete static_cast<KeyObject*>(obj); }

template <Output O>
int enc_encode(void* vctx, OSSL_CORE_BIO* cout, const void* obj_raw, const OSSL_PARAM /*obj_abstract*/[], int selection,
               OSSL_PASSPHRASE_CALLBACK* /*cb*/, void* /*cbarg*/) noexcept {
    auto* ctx = static_cast<EncoderCtx*>(vctx);
    const auto* key = static_cast<const KeyObject*>(obj_raw);
    if (ctx == nullptr || key == nullptr || !key->has_public()) return 0;
    if (!enc_does_selection(nullptr, selection)) return 0;
    return guard(ctx->provider, KEYWARD_HERE, 0, [&] {
        ossl::Bio out(BIO_new_from_core_bio(ctx->provider->libctx(), cout));
        if (!out) return 0;
        if constexpr (O == Output::pem) {
            return PEM_write_bio_PUBKEY(out.get(), key->pub.get()) == 1 ? 1 : 0;
        } else {
            return i2d_PUBKEY_bio(out.get(), key->pub.get()) == 1 ? 1 : 0;
        }
    });
}

}  // namespace

#define KEYWARD_ENCODER_TABLE(K, O)                                                                           \
    {                                                                                                         \
        KEYWARD_FN(OSSL_FUNC_ENCODER_NEWCTX, enc_newctx), KEYWARD_FN(OSSL_FUNC_ENCODER_FREECTX, enc_freectx), \
            KEYWARD_FN(OSSL_FUNC_ENCODER_DOES_SELECTION, enc_does_selection),                                 \
            KEYWARD_FN(OSSL_FUNC_ENCODER_IMPORT_OBJECT, enc_import_object<K>),                                \
            KEYWARD_FN(OSSL_FUNC_ENCODER_FREE_OBJECT, enc_free_object),                                       \
            KEYWARD_FN(OSSL_FUNC_ENCODER_ENCODE, enc_encode<O>), KEYWARD_FN_END,                              \
    }

const OSSL_DISPATCH encoder_ec_spki_der_functions[] = KEYWARD_ENCODER_TABLE(KeyKind::ec, Output::der);
const OSSL_DISPATCH encoder_ec_spki_pem_functions[] = KEYWARD_ENCODER_TABLE(KeyKind::ec, Output::pem);
const OSSL_DISPATCH encoder_rsa_spki_der_functions[] = KEYWARD_ENCODER_TABLE(KeyKind::rsa, Output::der);
const OSSL_DISPATCH encoder_rsa_spki_pem_functions[] = KEYWARD_ENCODER_TABLE(KeyKind::rsa, Output::pem);
const OSSL_DISPATCH encoder_rsa_pss_spki_der_functions[] = KEYWARD_ENCODER_TABLE(KeyKind::rsa_pss, Output::der);
const OSSL_DISPATCH encoder_rsa_pss_spki_pem_functions[] = KEYWARD_ENCODER_TABLE(KeyKind::rsa_pss, Output::pem);

}  // namespace keyward::provider
