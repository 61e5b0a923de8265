// DECODER for key-reference files, so that SSL_CTX_use_PrivateKey_file() (curl --key,
// nginx ssl_certificate_key, Python load_cert_chain) accepts a "KEYWARD KEY" file once
// the provider is active:
//   PEM "KEYWARD KEY"  --(decoder "DER", input=pem)-->  DER, structure "keyward"
//   DER               --(decoder "EC"/"RSA"/"RSA-PSS", input=der, structure=keyward)--> key object
// Decoding does not talk to the agent: the file carries the public key, and the
// connection is made when the key first signs.
#include <openssl/bio.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include <string>
#include <vector>

#include "ipc/keyref.hpp"
#include "provider/algorithms.hpp"
#include "provider/dispatch.hpp"
#include "provider/guard.hpp"
#include "provider/key.hpp"

namespace keyward::provider {

namespace {

constexpr const char* kStructure = "keyward";
// A key reference is well under 1 KiB; anything beyond this is someone else's file.
constexpr size_t kMaxInput = 64 * 1024;

struct DecoderCtx {
    ProviderContext* provider = nullptr;
    KeyKind kind = KeyKind::ec;  // key decoders only
};

template <KeyKind K>
void* dec_newctx(void* provctx) noexcept {
    return new_object<DecoderCtx>(provctx, KEYWARD_HERE, [](DecoderCtx& ctx) { ctx.kind = K; });
}

void dec_freectx(void* vctx) noexcept { delete static_cast<DecoderCtx*>(vctx); }

int dec_does_selection(void* /*provctx*/, int selection) noexcept {
    // A key reference stands for a key pair; it also answers for its public half.
    return selection == 0 || (selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0 ? 1 : 0;
}

// Reads the whole input; false if it cannot be read or is larger than any key reference
// (reading stops at kMaxInput + 1 bytes, so an oversized input is noticed).
bool read_input(ProviderContext& provider, OSSL_CORE_BIO* cin, std::vector<uint8_t>& out) {
    ossl::Bio in(BIO_new_from_core_bio(provider.libctx(), cin));
    if (!in) return false;
    out.clear();
    unsigned char buf[4096];
    while (out.size() <= kMaxInput) {
        size_t n = 0;
        if (BIO_read_ex(in.get(), buf, sizeof buf, &n) != 1 || n == 0) break;
        out.insert(out.end(), buf, buf + n);
    }
    return out.size() <= kMaxInput;
}

// Runs `decode(ctx, input)` on the whole input. An input that cannot be read or is too
// large is not ours: "empty handed" (1), and whatever reading raised is dropped.
template <typename F>
int decode_input(void* vctx, OSSL_CORE_BIO* cin, const SourceLocation& where, F&& decode) noexcept {
    auto* ctx = static_cast<DecoderCtx*>(vctx);
    if (ctx == nullptr) return 0;
    return guard(ctx->provider, where, 0, [&] {
        std::vector<uint8_t> input;
        ERR_set_mark();
        const bool readable = read_input(*ctx->provider, cin, input);
        ERR_pop_to_mark();
        return readable ? decode(*ctx, input) : 1;
    });
}

// PEM -> DER, for our label only; any other PEM is left to the default provider.
int dec_pem_decode(void* vctx, OSSL_CORE_BIO* cin, int /*selection*/, OSSL_CALLBACK* data_cb, void* data_cbarg,
                   OSSL_PASSPHRASE_CALLBACK* /*pw_cb*/, void* /*pw_cbarg*/) noexcept {
    return decode_input(vctx, cin, KEYWARD_HERE, [&](DecoderCtx& ctx, const std::vector<uint8_t>& input) {
        std::string label(kKeyReferencePemLabel);
        std::string_view text(reinterpret_cast<const char*>(input.data()), input.size());
        if (text.find("-----BEGIN " + label + "-----") == std::string_view::npos) return 1;
        // It claims to be ours: from here on a defect is reported, not skipped.
        auto ref = decode_key_reference_pem(text);
        if (!ref.ok()) {
            ctx.provider->raise(KEYWARD_HERE, Reason::invalid_argument, "keyward: " + ref.status().message);
            return 0;
        }
        std::vector<uint8_t> der = encode_key_reference_der(ref.value());
        std::string structure = kStructure;
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA, der.data(), der.size()),
            OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_STRUCTURE, structure.data(), 0),
            OSSL_PARAM_construct_end(),
        };
        return data_cb(params, data_cbarg);
    });
}

// DER key reference -> our key object of kind K (other kinds are left to their decoder).
int dec_key_decode(void* vctx, OSSL_CORE_BIO* cin, int /*selection*/, OSSL_CALLBACK* data_cb, void* data_cbarg,
                   OSSL_PASSPHRASE_CALLBACK* /*pw_cb*/, void* /*pw_cbarg*/) noexcept {
    return decode_input(vctx, cin, KEYWARD_HERE, [&](DecoderCtx& ctx, const std::vector<uint8_t>& input) {
        auto ref = decode_key_reference_der(input);
        if (!ref.ok()) return 1;
        // Another structure's DER, or a key of another kind: not ours, not an error.
        ERR_set_mark();
        ossl::PKey pub = parse_spki(*ctx.provider, KEYWARD_HERE, ref->spki);
        KeyKind kind{};
        const bool ours = pub && kind_of(pub.get(), kind) && kind == ctx.kind;
        ERR_pop_to_mark();
        if (!ours) return 1;
        auto key = std::make_unique<KeyObject>();
        key->provider = ctx.provider;
        key->kind = kind;
        key->name = ref->name;
        key->pub = std::move(pub);
        key->reference_confirmed = std::make_shared<std::atomic<bool>>(false);
        ctx.provider->debug("decoded key reference for key " + key->name);

        int type = OSSL_OBJECT_PKEY;
        std::string data_type(key_kind_type_name(kind));
        KeyObject* raw = key.release();
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &type),
            OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE, data_type.data(), 0),
            OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &raw, sizeof raw),
            OSSL_PARAM_construct_end(),
        };
        int ok = data_cb(params, data_cbarg);
        delete raw;  // null when our KEYMGMT's load took it over
        return ok;
    });
}

}  // namespace

const OSSL_DISPATCH decoder_pem_functions[] = {
    KEYWARD_FN(OSSL_FUNC_DECODER_NEWCTX, dec_newctx<KeyKind::ec>),
    KEYWARD_FN(OSSL_FUNC_DECODER_FREECTX, dec_freectx),
    KEYWARD_FN(OSSL_FUNC_DECODER_DECODE, dec_pem_decode),
    KEYWARD_FN_END,
};

#define KEYWARD_KEY_DECODER_TABLE(K)                                                                             \
    {                                                                                                            \
        KEYWARD_FN(OSSL_FUNC_DECODER_NEWCTX, dec_newctx<K>), KEYWARD_FN(OSSL_FUNC_DECODER_FREECTX, dec_freectx), \
            KEYWARD_FN(OSSL_FUNC_DECODER_DOES_SELECTION, dec_does_selection),                                    \
            KEYWARD_FN(OSSL_FUNC_DECODER_DECODE, dec_key_decode), KEYWARD_FN_END,                                \
    }

const OSSL_DISPATCH decoder_ec_functions[] = KEYWARD_KEY_DECODER_TABLE(KeyKind::ec);
const OSSL_DISPATCH decoder_rsa_functions[] = KEYWARD_KEY_DECODER_TABLE(KeyKind::rsa);
const OSSL_DISPATCH decoder_rsa_pss_functions[] = KEYWARD_KEY_DECODER_TABLE(KeyKind::rsa_pss);

}  // namespace keyward::provider
