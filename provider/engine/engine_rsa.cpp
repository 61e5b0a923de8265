#define OPENSSL_SUPPRESS_DEPRECATED  // the ENGINE, RSA_METHOD and EVP_PKEY_METHOD APIs are what engines have
#include "provider/engine/engine_rsa.hpp"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <cstring>
#include <new>
#include <vector>

#include "core/scheme_select.hpp"

namespace keyward::engine {

namespace {

int ex_index = -1;
RSA_METHOD* rsa_method = nullptr;
EVP_PKEY_METHOD* pkey_method = nullptr;
int (*builtin_sign)(EVP_PKEY_CTX*, unsigned char*, size_t*, const unsigned char*, size_t) = nullptr;
const int kPkeyNids[] = {EVP_PKEY_RSA, 0};

void free_key_data(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/, void* /*argp*/) {
    delete static_cast<EngineKey*>(ptr);
}

int dup_key_data(CRYPTO_EX_DATA* /*to*/, const CRYPTO_EX_DATA* /*from*/, void** from_d, int /*idx*/, long /*argl*/,
                 void* /*argp*/) {
    auto** slot = reinterpret_cast<EngineKey**>(from_d);
    if (*slot != nullptr) *slot = new (std::nothrow) EngineKey(**slot);
    return 1;
}

EngineKey* key_of(const RSA* rsa) { return static_cast<EngineKey*>(RSA_get_ex_data(rsa, ex_index)); }

keyward::DigestId digest_id(int nid) {
    switch (nid) {
        case NID_sha256: return keyward::DigestId::sha256;
        case NID_sha384: return keyward::DigestId::sha384;
        case NID_sha512: return keyward::DigestId::sha512;
        default: return keyward::DigestId::other;
    }
}

// Signs `digest` with the scheme chosen from `settings`; the signature goes to `sig`
// (RSA_size bytes available).
bool agent_sign(const EngineKey& key, const keyward::SignSettings& settings, const unsigned char* digest,
                size_t dlen, unsigned char* sig, size_t* siglen, size_t sigsize) {
    if (dlen != keyward::digest_size(settings.digest)) {
        raise(provider::Reason::invalid_argument,
              "keyward engine: key " + key.name + ": input is not a digest of the selected hash");
        return false;
    }
    auto scheme = keyward::select_scheme(keyward::KeyKind::rsa, settings);
    if (!scheme.ok()) {
        raise(provider::Reason::unsupported, scheme.status().message + " (key " + key.name + ")");
        return false;
    }
    auto answer = key.client->sign(key.name, scheme.value(), {digest, dlen});
    if (!answer.ok()) {
        raise_status(answer.status(), key, "signing");
        return false;
    }
    if (answer->size() > sigsize) {
        raise(provider::Reason::internal, "keyward engine: the agent's signature does not fit");
        return false;
    }
    std::memcpy(sig, answer->data(), answer->size());
    *siglen = answer->size();
    if (debug_enabled()) {
        const auto* info = scheme_info(scheme.value());
        debug("signed with key " + key.name + " (" + std::string(info ? info->name : "?") + ")");
    }
    return true;
}

// ---- EVP_PKEY_METHOD: the path every EVP_DigestSign / EVP_PKEY_sign takes -------------

int pkey_rsa_sign(EVP_PKEY_CTX* ctx, unsigned char* sig, size_t* siglen, const unsigned char* tbs,
                  size_t tbslen) noexcept {
    try {
        EVP_PKEY* pkey = EVP_PKEY_CTX_get0_pkey(ctx);
        const RSA* rsa = pkey != nullptr ? EVP_PKEY_get0_RSA(pkey) : nullptr;
        const EngineKey* key = rsa != nullptr ? key_of(rsa) : nullptr;
        if (key == nullptr) return builtin_sign(ctx, sig, siglen, tbs, tbslen);  // not ours
        const size_t size = static_cast<size_t>(RSA_size(rsa));
        if (sig == nullptr) {
            *siglen = size;
            return 1;
        }
        const EVP_MD* md = nullptr;
        int padding = RSA_PKCS1_PADDING;
        if (EVP_PKEY_CTX_get_signature_md(ctx, &md) <= 0 || md == nullptr) {
            raise(provider::Reason::invalid_argument,
                  "keyward engine: key " + key->name + ": set a digest for RSA signing (no raw RSA operations)");
            return 0;
        }
        EVP_PKEY_CTX_get_rsa_padding(ctx, &padding);
        keyward::SignSettings s;
        s.digest = digest_id(EVP_MD_get_type(md));
        s.digest_name = EVP_MD_get0_name(md);
        auto pad = keyward::padding_from_int(padding);
        if (!pad.ok()) {
            raise(provider::Reason::unsupported, pad.status().message + " (key " + key->name + ")");
            return 0;
        }
        s.padding = pad.value();
        if (s.padding == keyward::Padding::pss) {
            int salt = keyward::kSaltDigest;
            EVP_PKEY_CTX_get_rsa_pss_saltlen(ctx, &salt);
            s.saltlen = salt;
            const EVP_MD* mgf1 = nullptr;
            if (EVP_PKEY_CTX_get_rsa_mgf1_md(ctx, &mgf1) > 0 && mgf1 != nullptr)
                s.mgf1 = digest_id(EVP_MD_get_type(mgf1));
        }
        return agent_sign(*key, s, tbs, tbslen, sig, siglen, *siglen < size ? *siglen : size) ? 1 : 0;
    } catch (const std::exception& e) {
        raise(provider::Reason::internal, std::string("keyward engine: ") + e.what());
        return 0;
    }
}

// ---- RSA_METHOD: direct RSA_sign() callers, and refusal of everything raw -------------

int rsa_sign(int type, const unsigned char* m, unsigned int m_length, unsigned char* sigret, unsigned int* siglen,
             const RSA* rsa) noexcept {
    try {
        const EngineKey* key = key_of(rsa);
        if (key == nullptr) {
            raise(provider::Reason::not_our_key, "keyward engine: this RSA key is not held by the agent");
            return 0;
        }
        keyward::SignSettings s;
        s.digest = digest_id(type);
        s.digest_name = OBJ_nid2sn(type);
        s.padding = keyward::Padding::pkcs1;
        size_t len = 0;
        bool ok = agent_sign(*key, s, m, m_length, sigret, &len, static_cast<size_t>(RSA_size(rsa)));
        *siglen = static_cast<unsigned int>(len);
        return ok ? 1 : 0;
    } catch (const std::exception& e) {
        raise(provider::Reason::internal, std::string("keyward engine: ") + e.what());
        return 0;
    }
}

int rsa_refuse_raw(int /*flen*/, const unsigned char* /*from*/, unsigned char* /*to*/, RSA* rsa,
                   int /*padding*/) noexcept {
    const EngineKey* key = key_of(rsa);
    raise(provider::Reason::unsupported, "keyward engine: key " + (key ? key->name : std::string("?")) +
                                             ": raw RSA private-key operations are not offered by the agent");
    return -1;
}

}  // namespace

bool rsa_setup() {
    if (rsa_method != nullptr) return true;
    ex_index = RSA_get_ex_new_index(0, nullptr, nullptr, dup_key_data, free_key_data);
    if (ex_index < 0) return false;

    RSA_METHOD* m = RSA_meth_dup(RSA_PKCS1_OpenSSL());  // public operations stay OpenSSL's
    if (m == nullptr || RSA_meth_set1_name(m, "keyward agent-held RSA key") != 1 ||
        RSA_meth_set_sign(m, rsa_sign) != 1 || RSA_meth_set_priv_enc(m, rsa_refuse_raw) != 1 ||
        RSA_meth_set_priv_dec(m, rsa_refuse_raw) != 1 ||
        RSA_meth_set_flags(m, RSA_meth_get_flags(m) | RSA_FLAG_EXT_PKEY) != 1) {
        RSA_meth_free(m);
        return false;
    }

    const EVP_PKEY_METHOD* builtin = EVP_PKEY_meth_find(EVP_PKEY_RSA);
    EVP_PKEY_METHOD* pm = builtin != nullptr ? EVP_PKEY_meth_new(EVP_PKEY_RSA, 0) : nullptr;
    if (pm == nullptr) {
        RSA_meth_free(m);
        return false;
    }
    EVP_PKEY_meth_copy(pm, builtin);
    int (*sign_init)(EVP_PKEY_CTX*) = nullptr;
    EVP_PKEY_meth_get_sign(builtin, &sign_init, &builtin_sign);
    EVP_PKEY_meth_set_sign(pm, sign_init, pkey_rsa_sign);
    rsa_method = m;
    pkey_method = pm;
    return true;
}

void rsa_teardown() {
    // Keys handed out may outlive the engine; the methods stay until the process ends.
}

int rsa_pkey_meths(ENGINE* /*e*/, EVP_PKEY_METHOD** pmeth, const int** nids, int nid) {
    if (pmeth == nullptr) {
        *nids = kPkeyNids;
        return 1;
    }
    if (nid == EVP_PKEY_RSA && rsa_setup()) {
        *pmeth = pkey_method;
        return 1;
    }
    *pmeth = nullptr;
    return 0;
}

EVP_PKEY* rsa_make_pkey(ENGINE* e, RSA* pub, std::unique_ptr<EngineKey> key) {
    if (!rsa_setup() || RSA_set_method(pub, rsa_method) != 1 || RSA_set_ex_data(pub, ex_index, key.get()) != 1) {
        RSA_free(pub);
        return nullptr;
    }
    key.release();  // owned by the RSA's ex_data now
    EVP_PKEY* pkey = EVP_PKEY_new();
    if (pkey == nullptr || EVP_PKEY_assign_RSA(pkey, pub) != 1) {
        EVP_PKEY_free(pkey);
        RSA_free(pub);
        return nullptr;
    }
    // Our EVP_PKEY_METHOD for this key only (not a process-wide default).
    if (EVP_PKEY_set1_engine(pkey, e) != 1) {
        EVP_PKEY_free(pkey);
        return nullptr;
    }
    return pkey;
}

}  // namespace keyward::engine
