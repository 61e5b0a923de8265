// SIGNATURE for ECDSA and RSA (PKCS#1 v1.5 and PSS) with agent-held keys.
//
// We hash locally (digests fetched from the default provider), map the request onto one
// of the agent's schemes and send the digest. Verification is delegated to the default
// provider on the public key, so nothing breaks should OpenSSL ever pick this
// implementation to verify someone else's signature.
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include <cstring>

#include "provider/algorithms.hpp"
#include "provider/dispatch.hpp"
#include "provider/guard.hpp"
#include "provider/key.hpp"
#include "core/scheme_select.hpp"

namespace keyward::provider {

namespace {

enum class Mode { none, sign, verify };

struct SigCtx {
    ProviderContext* provider = nullptr;
    bool is_ecdsa = true;  // which algorithm this context was created for
    Mode mode = Mode::none;
    // A copy of the key (name + shared public key): the context may outlive neither, but
    // holding our own reference makes dupctx trivially safe.
    KeyKind kind = KeyKind::ec;
    std::string key_name;
    ossl::PKey pub;
    std::shared_ptr<std::atomic<bool>> reference_confirmed;  // see KeyObject

    SignSettings settings;
    ossl::Md md;        // the signature digest, null until set
    ossl::Md mgf1_md;   // PSS only; null: same as md
    ossl::MdCtx mdctx;  // digest-sign/verify in progress

    std::string where_key() const { return key_name.empty() ? std::string("(public key)") : key_name; }
};

SigCtx* as_ctx(void* v) { return static_cast<SigCtx*>(v); }

DigestId identify(const EVP_MD* md) {
    if (md == nullptr) return DigestId::none;
    if (EVP_MD_is_a(md, "SHA2-256")) return DigestId::sha256;
    if (EVP_MD_is_a(md, "SHA2-384")) return DigestId::sha384;
    if (EVP_MD_is_a(md, "SHA2-512")) return DigestId::sha512;
    return DigestId::other;
}

bool set_digest(SigCtx& c, const char* name) {
    ossl::Md md(c.provider->fetch_digest(KEYWARD_HERE, name));
    if (!md) return false;
    c.settings.digest = identify(md.get());
    c.settings.digest_name = name;
    c.md = std::move(md);
    return true;
}

bool set_mgf1(SigCtx& c, const char* name) {
    ossl::Md md(c.provider->fetch_digest(KEYWARD_HERE, name));
    if (!md) return false;
    c.settings.mgf1 = identify(md.get());
    c.mgf1_md = std::move(md);
    return true;
}

bool fail_status(SigCtx& c, const Status& s) {
    c.provider->raise(KEYWARD_HERE,
                      s.code == ErrorCode::invalid_argument ? Reason::invalid_argument : Reason::unsupported,
                      s.message + " (key " + c.where_key() + ")");
    return false;
}

int sig_set_ctx_params(void* vctx, const OSSL_PARAM params[]) noexcept;

void* sig_newctx_impl(void* provctx, bool ecdsa) {
    return new_object<SigCtx>(provctx, KEYWARD_HERE, [&](SigCtx& c) { c.is_ecdsa = ecdsa; });
}

void* sig_newctx_ecdsa(void* provctx, const char* /*propq*/) noexcept { return sig_newctx_impl(provctx, true); }
void* sig_newctx_rsa(void* provctx, const char* /*propq*/) noexcept { return sig_newctx_impl(provctx, false); }

void sig_freectx(void* vctx) noexcept { delete as_ctx(vctx); }

void* sig_dupctx(void* vctx) noexcept {
    SigCtx* src = as_ctx(vctx);
    if (src == nullptr) return nullptr;
    return guard(src->provider, KEYWARD_HERE, static_cast<void*>(nullptr), [&]() -> void* {
        auto c = std::make_unique<SigCtx>();
        c->provider = src->provider;
        c->is_ecdsa = src->is_ecdsa;
        c->mode = src->mode;
        c->kind = src->kind;
        c->key_name = src->key_name;
        c->reference_confirmed = src->reference_confirmed;
        c->settings = src->settings;
        if (src->pub) {
            if (EVP_PKEY_up_ref(src->pub.get()) != 1) return nullptr;
            c->pub.reset(src->pub.get());
        }
        if (src->md) {
            if (EVP_MD_up_ref(src->md.get()) != 1) return nullptr;
            c->md.reset(src->md.get());
        }
        if (src->mgf1_md) {
            if (EVP_MD_up_ref(src->mgf1_md.get()) != 1) return nullptr;
            c->mgf1_md.reset(src->mgf1_md.get());
        }
        if (src->mdctx) {
            c->mdctx.reset(EVP_MD_CTX_new());
            if (!c->mdctx || EVP_MD_CTX_copy_ex(c->mdctx.get(), src->mdctx.get()) != 1) return nullptr;
        }
        return c.release();
    });
}

// Common part of every *_init: takes the key and resets the per-operation state.
bool init_common(SigCtx& c, void* provkey, Mode mode, const OSSL_PARAM params[]) {
    auto* key = static_cast<KeyObject*>(provkey);
    if (key == nullptr) {
        // Re-initialisation with the same key (EVP_PKEY_sign_init_ex with a NULL key is
        // not a thing in 3.0, but be safe): keep the previous key.
        if (!c.pub) {
            c.provider->raise(KEYWARD_HERE, Reason::invalid_argument,
                              "keyward: no key given to the signature operation");
            return false;
        }
    } else {
        if (!key->has_public()) {
            c.provider->raise(KEYWARD_HERE, Reason::invalid_argument, "keyward: the key holds no public key");
            return false;
        }
        if ((key->kind == KeyKind::ec) != c.is_ecdsa) {
            c.provider->raise(KEYWARD_HERE, Reason::invalid_argument,
                              "keyward: key " + (key->name.empty() ? std::string("(public key)") : key->name) +
                                  " does not fit this signature algorithm");
            return false;
        }
        if (mode == Mode::sign && !key->has_private()) {
            c.provider->raise(KEYWARD_HERE, Reason::not_our_key,
                              "keyward: cannot sign with a public key only (not a key held by the agent)");
            return false;
        }
        if (EVP_PKEY_up_ref(key->pub.get()) != 1) return false;
        c.pub.reset(key->pub.get());
        c.kind = key->kind;
        c.key_name = key->name;
        c.reference_confirmed = key->reference_confirmed;
    }
    c.mode = mode;
    c.settings = SignSettings{};
    if (c.kind == KeyKind::rsa_pss) c.settings.padding = Padding::pss;
    c.md.reset();
    c.mgf1_md.reset();
    c.mdctx.reset();
    return sig_set_ctx_params(&c, params) == 1;
}

size_t max_signature_size(const SigCtx& c) {
    int n = EVP_PKEY_get_size(c.pub.get());
    return n > 0 ? static_cast<size_t>(n) : 0;
}

// Sends one digest to the agent and copies the signature out.
bool sign_digest(SigCtx& c, unsigned char* sig, size_t* siglen, size_t sigsize, const unsigned char* dgst,
                 size_t dlen) {
    const SignSettings& s = c.settings;
    if (c.md && dlen != static_cast<size_t>(EVP_MD_get_size(c.md.get()))) {
        c.provider->raise(KEYWARD_HERE, Reason::invalid_argument,
                          "keyward: key " + c.where_key() + ": input of " + std::to_string(dlen) + " bytes is not a " +
                              s.digest_name + " digest");
        return false;
    }
    // Prehashed input without a declared digest is fine for ECDSA (only the hash value
    // matters); RSA PKCS#1 would have to wrap it in the DigestInfo of a named hash, which
    // we will not guess.
    if (c.kind != KeyKind::ec && !c.md) {
        c.provider->raise(
            KEYWARD_HERE, Reason::invalid_argument,
            "keyward: key " + c.where_key() + ": set a digest for RSA signing (e.g. -pkeyopt digest:sha256)");
        return false;
    }
    const int bits = c.kind == KeyKind::ec ? EVP_PKEY_get_bits(c.pub.get()) : 0;
    auto scheme = select_scheme(c.kind, s, bits);
    if (!scheme.ok()) return fail_status(c, scheme.status());

    std::span<const uint8_t> input(dgst, dlen);
    std::vector<uint8_t> fitted;
    if (c.kind == KeyKind::ec) {
        fitted = fit_ecdsa_input(input, static_cast<size_t>(bits) / 8);
        input = fitted;
    }
    // A reference file names a key; the agent signs with whatever key has that name now.
    // Make sure it is still the key the file (and the certificate beside it) was made for.
    if (c.reference_confirmed && !c.reference_confirmed->load(std::memory_order_acquire)) {
        if (!agent_still_has(*c.provider, KEYWARD_HERE, c.key_name, c.pub.get())) return false;
        c.reference_confirmed->store(true, std::memory_order_release);
    }
    auto answer = c.provider->client().sign(c.key_name, scheme.value(), input);
    if (!answer.ok()) {
        c.provider->raise_status(KEYWARD_HERE, answer.status(), c.key_name, "signing");
        return false;
    }
    const auto& bytes = answer.value();
    if (bytes.size() > sigsize) {
        c.provider->raise(KEYWARD_HERE, Reason::internal,
                          "keyward: key " + c.key_name + ": the agent's signature does not fit the buffer");
        return false;
    }
    std::memcpy(sig, bytes.data(), bytes.size());
    *siglen = bytes.size();
    if (c.provider->debug_enabled()) {
        const auto* info = scheme_info(scheme.value());
        c.provider->debug("signed with key " + c.key_name + " (" + std::string(info ? info->name : "?") + ")");
    }
    return true;
}

// A default-provider context on the public key with our settings applied: used to verify
// and to produce the AlgorithmIdentifier of what we sign.
ossl::PKeyCtx default_verify_ctx(SigCtx& c) {
    ossl::PKeyCtx pctx(EVP_PKEY_CTX_new_from_pkey(c.provider->libctx(), c.pub.get(), ProviderContext::kDefaultProps));
    if (!pctx || EVP_PKEY_verify_init(pctx.get()) != 1) return nullptr;
    if (c.md && EVP_PKEY_CTX_set_signature_md(pctx.get(), c.md.get()) != 1) return nullptr;
    if (c.kind != KeyKind::ec) {
        Padding pad = c.kind == KeyKind::rsa_pss ? Padding::pss : c.settings.padding;
        if (EVP_PKEY_CTX_set_rsa_padding(pctx.get(), padding_to_int(pad)) != 1) return nullptr;
        if (pad == Padding::pss) {
            if (c.mode == Mode::sign) {
                // What the agent produces: salt = hash length.
                if (EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx.get(), RSA_PSS_SALTLEN_DIGEST) != 1) return nullptr;
            } else if (EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx.get(), c.settings.saltlen) != 1) {
                return nullptr;
            }
            if (c.mgf1_md && EVP_PKEY_CTX_set_rsa_mgf1_md(pctx.get(), c.mgf1_md.get()) != 1) return nullptr;
        }
    }
    return pctx;
}

int sig_sign_init(void* vctx, void* provkey, const OSSL_PARAM params[]) noexcept {
    SigCtx* c = as_ctx(vctx);
    if (c == nullptr) return 0;
    return guard(c->provider, KEYWARD_HERE, 0, [&] { return init_common(*c, provkey, Mode::sign, params) ? 1 : 0; });
}

int sig_sign(void* vctx, unsigned char* sig, size_t* siglen, size_t sigsize, const unsigned char* tbs,
             size_t tbslen) noexcept {
    SigCtx* c = as_ctx(vctx);
    if (c == nullptr || siglen == nullptr) return 0;
    return guard(c->provider, KEYWARD_HERE, 0, [&] {
        if (c->mode != Mode::sign) return 0;
        if (sig == nullptr) {
            *siglen = max_signature_size(*c);
            return 1;
        }
        return sign_digest(*c, sig, siglen, sigsize, tbs, tbslen) ? 1 : 0;
    });
}

int sig_verify_init(void* vctx, void* provkey, const OSSL_PARAM params[]) noexcept {
    SigCtx* c = as_ctx(vctx);
    if (c == nullptr) return 0;
    return guard(c->provider, KEYWARD_HERE, 0, [&] { return init_common(*c, provkey, Mode::verify, params) ? 1 : 0; });
}

int sig_verify(void* vctx, const unsigned char* sig, size_t siglen, const unsigned char* tbs, size_t tbslen) noexcept {
    SigCtx* c = as_ctx(vctx);
    if (c == nullptr) return 0;
    return guard(c->provider, KEYWARD_HERE, 0, [&] {
        if (c->mode != Mode::verify) return 0;
        ossl::PKeyCtx pctx = default_verify_ctx(*c);
        return pctx && EVP_PKEY_verify(pctx.get(), sig, siglen, tbs, tbslen) == 1 ? 1 : 0;
    });
}

bool digest_init(SigCtx& c, const char* mdname, void* provkey, Mode mode, const OSSL_PARAM params[]) {
    if (!init_common(c, provkey, mode, nullptr)) return false;
    // OpenSSL passes the key's default digest when the caller named none.
    if (!set_digest(c, mdname != nullptr && *mdname != '\0' ? mdname : "SHA256")) return false;
    if (sig_set_ctx_params(&c, params) != 1) return false;
    c.mdctx.reset(EVP_MD_CTX_new());
    return c.mdctx && EVP_DigestInit_ex2(c.mdctx.get(), c.md.get(), nullptr) == 1;
}

int sig_digest_sign_init(void* vctx, const char* mdname, void* provkey, const OSSL_PARAM params[]) noexcept {
    SigCtx* c = as_ctx(vctx);
    if (c == nullptr) return 0;
    return guard(c->provider, KEYWARD_HERE, 0,
                 [&] { return digest_init(*c, mdname, provkey, Mode::sign, params) ? 1 : 0; });
}

int sig_digest_update(void* vctx, const unsigned char* data, size_t datalen) noexcept {
    SigCtx* c = as_ctx(vctx);
    if (c == nullptr || !c->mdctx) return 0;
    return EVP_DigestUpdate(c->mdctx.get(), data, datalen);
}

int sig_digest_sign_final(void* vctx, unsigned char* sig, size_t* siglen, size_t sigsize) noexcept {
    SigCtx* c = as_ctx(vctx);
    if (c == nullptr || siglen == nullptr || !c->mdctx) return 0;
    return guard(c->provider, KEYWARD_HERE, 0, [&] {
        if (c->mode != Mode::sign) return 0;
        if (sig == nullptr) {
            *siglen = max_signature_size(*c);
            return 1;
        }
        unsigned char dgst[EVP_MAX_MD_SIZE];
        unsigned int dlen = 0;
        if (EVP_DigestFinal_ex(c->mdctx.get(), dgst, &dlen) != 1) return 0;
        return sign_digest(*c, sig, siglen, sigsize, dgst, dlen) ? 1 : 0;
    });
}

int sig_digest_verify_init(void* vctx, const char* mdname, void* provkey, const OSSL_PARAM params[]) noexcept {
    SigCtx* c = as_ctx(vctx);
    if (c == nullptr) return 0;
    return guard(c->provider, KEYWARD_HERE, 0,
                 [&] { return digest_init(*c, mdname, provkey, Mode::verify, params) ? 1 : 0; });
}

int sig_digest_verify_final(void* vctx, const unsigned char* sig, size_t siglen) noexcept {
    SigCtx* c = as_ctx(vctx);
    if (c == nullptr || !c->mdctx) return 0;
    return guard(c->provider, KEYWARD_HERE, 0, [&] {
        if (c->mode != Mode::verify) return 0;
        unsigned char dgst[EVP_MAX_MD_SIZE];
        unsigned int dlen = 0;
        if (EVP_DigestFinal_ex(c->mdctx.get(), dgst, &dlen) != 1) return 0;
        ossl::PKeyCtx pctx = default_verify_ctx(*c);
        return pctx && EVP_PKEY_verify(pctx.get(), sig, siglen, dgst, dlen) == 1 ? 1 : 0;
    });
}

// ---- parameters -------------------------------------------------------------

bool get_algorithm_id(SigCtx& c, OSSL_PARAM* p) {
    if (!c.pub) return false;
    ERR_set_mark();
    ossl::PKeyCtx pctx = default_verify_ctx(c);
    OSSL_PARAM one[2] = {*p, OSSL_PARAM_END};
    bool ok = pctx && EVP_PKEY_CTX_get_params(pctx.get(), one) == 1 && OSSL_PARAM_modified(&one[0]);
    if (!ok) {
        ERR_pop_to_mark();
        c.provider->raise(KEYWARD_HERE, Reason::unsupported,
                          "keyward: key " + c.where_key() + ": cannot describe this signature algorithm");
        return false;
    }
    ERR_clear_last_mark();
    p->return_size = one[0].return_size;
    return true;
}

int sig_get_ctx_params(void* vctx, OSSL_PARAM params[]) noexcept {
    SigCtx* c = as_ctx(vctx);
    if (c == nullptr) return 0;
    return guard(c->provider, KEYWARD_HERE, 0, [&] {
        OSSL_PARAM* p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
        if (p != nullptr && !get_algorithm_id(*c, p)) return 0;
        p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST);
        if (p != nullptr && c->md && !OSSL_PARAM_set_utf8_string(p, EVP_MD_get0_name(c->md.get()))) return 0;
        if (!c->is_ecdsa) {
            Padding pad = c->kind == KeyKind::rsa_pss ? Padding::pss : c->settings.padding;
            p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
            if (p != nullptr) {
                int ok = p->data_type == OSSL_PARAM_UTF8_STRING
                             ? OSSL_PARAM_set_utf8_string(p, std::string(padding_name(pad)).c_str())
                             : OSSL_PARAM_set_int(p, padding_to_int(pad));
                if (!ok) return 0;
            }
            p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
            if (p != nullptr) {
                // Report what is actually used: the hash length once the digest is known.
                int salt = c->md ? static_cast<int>(EVP_MD_get_size(c->md.get())) : c->settings.saltlen;
                int ok = p->data_type == OSSL_PARAM_UTF8_STRING
                             ? OSSL_PARAM_set_utf8_string(p, std::to_string(salt).c_str())
                             : OSSL_PARAM_set_int(p, salt);
                if (!ok) return 0;
            }
            p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
            if (p != nullptr) {
                const EVP_MD* mgf = c->mgf1_md ? c->mgf1_md.get() : c->md.get();
                if (mgf != nullptr && !OSSL_PARAM_set_utf8_string(p, EVP_MD_get0_name(mgf))) return 0;
            }
        }
        return 1;
    });
}

// The parameter table of the context's algorithm.
const OSSL_PARAM* for_algorithm(void* vctx, const OSSL_PARAM* ecdsa, const OSSL_PARAM* rsa) {
    const SigCtx* c = as_ctx(vctx);
    return c != nullptr && !c->is_ecdsa ? rsa : ecdsa;
}

const OSSL_PARAM* sig_gettable_ctx_params(void* vctx, void* /*provctx*/) noexcept {
    static const OSSL_PARAM ecdsa[] = {
        OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, nullptr, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, nullptr, 0),
        OSSL_PARAM_END,
    };
    static const OSSL_PARAM rsa[] = {
        OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, nullptr, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, nullptr, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, nullptr, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, nullptr, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, nullptr, 0),
        OSSL_PARAM_END,
    };
    return for_algorithm(vctx, ecdsa, rsa);
}

int sig_set_ctx_params(void* vctx, const OSSL_PARAM params[]) noexcept {
    SigCtx* c = as_ctx(vctx);
    if (c == nullptr) return 0;
    if (params == nullptr) return 1;
    return guard(c->provider, KEYWARD_HERE, 0, [&] {
        const OSSL_PARAM* p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
        if (p != nullptr) {
            const char* name = nullptr;
            if (!OSSL_PARAM_get_utf8_string_ptr(p, &name) || !set_digest(*c, name)) return 0;
            if (c->mdctx && EVP_DigestInit_ex2(c->mdctx.get(), c->md.get(), nullptr) != 1) return 0;
        }
        if (c->is_ecdsa) return 1;

        p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
        if (p != nullptr) {
            Result<Padding> pad = Status{ErrorCode::invalid_argument, "keyward: invalid pad-mode parameter"};
            if (p->data_type == OSSL_PARAM_UTF8_STRING) {
                const char* s = nullptr;
                if (OSSL_PARAM_get_utf8_string_ptr(p, &s)) pad = parse_padding(s);
            } else {
                int mode = 0;
                if (OSSL_PARAM_get_int(p, &mode)) pad = padding_from_int(mode);
            }
            if (!pad.ok()) {
                fail_status(*c, pad.status());
                return 0;
            }
            c->settings.padding = pad.value();
        }
        p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
        if (p != nullptr) {
            Result<int> salt = Status{ErrorCode::invalid_argument, "keyward: invalid saltlen parameter"};
            if (p->data_type == OSSL_PARAM_UTF8_STRING) {
                const char* s = nullptr;
                if (OSSL_PARAM_get_utf8_string_ptr(p, &s)) salt = parse_saltlen(s);
            } else {
                int v = 0;
                if (OSSL_PARAM_get_int(p, &v)) salt = v;
            }
            if (!salt.ok()) {
                fail_status(*c, salt.status());
                return 0;
            }
            c->settings.saltlen = salt.value();
        }
        p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
        if (p != nullptr) {
            const char* name = nullptr;
            if (!OSSL_PARAM_get_utf8_string_ptr(p, &name) || !set_mgf1(*c, name)) return 0;
        }
        // Refuse now, not at signing time, what the agent cannot do (e.g. an odd salt),
        // so the caller sees the cause where it set it.
        if (c->mode == Mode::sign && c->md) {
            auto scheme = select_scheme(c->kind, c->settings, 0);
            if (!scheme.ok()) {
                fail_status(*c, scheme.status());
                return 0;
            }
        }
        return 1;
    });
}

const OSSL_PARAM* sig_settable_ctx_params(void* vctx, void* /*provctx*/) noexcept {
    static const OSSL_PARAM ecdsa[] = {
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, nullptr, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, nullptr, 0),
        OSSL_PARAM_END,
    };
    static const OSSL_PARAM rsa[] = {
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, nullptr, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, nullptr, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, nullptr, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, nullptr, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, nullptr, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_PROPERTIES, nullptr, 0),
        OSSL_PARAM_END,
    };
    return for_algorithm(vctx, ecdsa, rsa);
}

}  // namespace

#define KEYWARD_SIGNATURE_TABLE(newctx)                                                                               \
    {                                                                                                                 \
        KEYWARD_FN(OSSL_FUNC_SIGNATURE_NEWCTX, newctx), KEYWARD_FN(OSSL_FUNC_SIGNATURE_FREECTX, sig_freectx),         \
            KEYWARD_FN(OSSL_FUNC_SIGNATURE_DUPCTX, sig_dupctx),                                                       \
            KEYWARD_FN(OSSL_FUNC_SIGNATURE_SIGN_INIT, sig_sign_init), KEYWARD_FN(OSSL_FUNC_SIGNATURE_SIGN, sig_sign), \
            KEYWARD_FN(OSSL_FUNC_SIGNATURE_VERIFY_INIT, sig_verify_init),                                             \
            KEYWARD_FN(OSSL_FUNC_SIGNATURE_VERIFY, sig_verify),                                                       \
            KEYWARD_FN(OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, sig_digest_sign_init),                                   \
            KEYWARD_FN(OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, sig_digest_update),                                    \
            KEYWARD_FN(OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, sig_digest_sign_final),                                 \
            KEYWARD_FN(OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, sig_digest_verify_init),                               \
            KEYWARD_FN(OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE, sig_digest_update),                                  \
            KEYWARD_FN(OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL, sig_digest_verify_final),                             \
            KEYWARD_FN(OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, sig_get_ctx_params),                                       \
            KEYWARD_FN(OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, sig_gettable_ctx_params),                             \
            KEYWARD_FN(OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, sig_set_ctx_params),                                       \
            KEYWARD_FN(OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, sig_settable_ctx_params), KEYWARD_FN_END,             \
    }

const OSSL_DISPATCH signature_ecdsa_functions[] = KEYWARD_SIGNATURE_TABLE(sig_newctx_ecdsa);
const OSSL_DISPATCH signature_rsa_functions[] = KEYWARD_SIGNATURE_TABLE(sig_newctx_rsa);

}  // namespace keyward::provider
