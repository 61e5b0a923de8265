#define OPENSSL_SUPPRESS_DEPRECATED  // EC_KEY_METHOD, RSA_METHOD and EVP_PKEY_METHOD are deprecated in 3.0
#include "core/legacy_key.hpp"

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cstring>
#include <new>
#include <string_view>

#include "core/c_boundary.hpp"
#include "core/scheme_select.hpp"

namespace keyward {

namespace {

struct Binding {
    std::shared_ptr<void> owner;
    const std::type_info* owner_type;
    LegacySigner signer;
};
// What ex_data points at, one per EC_KEY / RSA: copies of the key share the binding.
using BindingRef = std::shared_ptr<const Binding>;

using PkeySignFn = int (*)(EVP_PKEY_CTX*, unsigned char*, size_t*, const unsigned char*, size_t);

struct Methods {
    int ec_index = -1;
    int rsa_index = -1;
    EC_KEY_METHOD* ec = nullptr;
    RSA_METHOD* rsa = nullptr;
    EVP_PKEY_METHOD* rsa_pkey = nullptr;
    PkeySignFn builtin_rsa_sign = nullptr;
};
const Methods& methods() noexcept;

const Binding* binding_of(const EC_KEY* ec) {
    auto* ref = static_cast<BindingRef*>(EC_KEY_get_ex_data(ec, methods().ec_index));
    return ref != nullptr ? ref->get() : nullptr;
}

const Binding* binding_of(const RSA* rsa) {
    auto* ref = static_cast<BindingRef*>(RSA_get_ex_data(rsa, methods().rsa_index));
    return ref != nullptr ? ref->get() : nullptr;
}

// A key with our method but no signer: only reachable through misuse, with no owner to tell.
void raise_unbound() { ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL, "keyward: this key has no signer"); }
template <typename R>
R unbound(R on_failure) {
    raise_unbound();
    return on_failure;
}

void fail(const Binding& b, ErrorCode code, std::string_view cause) {
    b.signer.fail(Status{code, "key " + b.signer.name + ": " + std::string(cause)});
}

// scheme_select's messages name keyward already; the owner adds its own prefix.
std::string_view cause_of(const Status& status) {
    std::string_view m = status.message;
    constexpr std::string_view prefix = "keyward: ";
    if (m.substr(0, prefix.size()) == prefix) m.remove_prefix(prefix.size());
    return m;
}

// Every callback OpenSSL makes into this file: an exception becomes the failure value,
// told through the key's owner when there is one.
template <typename R, typename F>
R boundary(const Binding* b, R on_failure, F&& body) noexcept {
    return c_boundary(
        on_failure,
        [&](std::string_view message) {
            if (b != nullptr) fail(*b, ErrorCode::internal, message);
            else raise_unbound();
        },
        std::forward<F>(body));
}

bool sign(const Binding& b, const Result<Scheme>& scheme, std::span<const uint8_t> digest, std::vector<uint8_t>& out) {
    if (!scheme.ok()) {
        fail(b, scheme.status().code, cause_of(scheme.status()));
        return false;
    }
    auto answer = b.signer.sign(scheme.value(), digest);
    if (!answer.ok()) return false;  // the signer has said why
    out = std::move(answer.value());
    return true;
}

bool put(const Binding& b, const std::vector<uint8_t>& sig, unsigned char* to, size_t room, size_t& len) {
    if (sig.size() > room) {
        fail(b, ErrorCode::internal, "the signature does not fit (" + std::to_string(sig.size()) + " bytes)");
        return false;
    }
    std::memcpy(to, sig.data(), sig.size());
    len = sig.size();
    return true;
}

// ---- EC_KEY_METHOD ---------------------------------------------------------------------

bool ecdsa_sign(const Binding& b, const unsigned char* dgst, int dlen, const EC_KEY* eckey, std::vector<uint8_t>& der) {
    const EC_GROUP* group = EC_KEY_get0_group(eckey);
    if (group == nullptr || dlen < 0) {
        fail(b, ErrorCode::invalid_argument, "no curve or no digest to sign");
        return false;
    }
    const int bits = EC_GROUP_order_bits(group);
    auto input = fit_ecdsa_input({dgst, static_cast<size_t>(dlen)}, static_cast<size_t>(bits + 7) / 8);
    return sign(b, select_scheme(KeyKind::ec, {}, bits), input, der);
}

int ec_sign(int /*type*/, const unsigned char* dgst, int dlen, unsigned char* sig, unsigned int* siglen,
            const BIGNUM* /*kinv*/, const BIGNUM* /*r*/, EC_KEY* eckey) noexcept {
    const Binding* b = binding_of(eckey);
    if (b == nullptr) return unbound(0);
    return boundary(b, 0, [&] {
        std::vector<uint8_t> der;
        size_t len = 0;
        if (!ecdsa_sign(*b, dgst, dlen, eckey, der) || !put(*b, der, sig, static_cast<size_t>(ECDSA_size(eckey)), len))
            return 0;
        *siglen = static_cast<unsigned int>(len);
        return 1;
    });
}

ECDSA_SIG* ec_sign_sig(const unsigned char* dgst, int dlen, const BIGNUM* /*kinv*/, const BIGNUM* /*r*/,
                       EC_KEY* eckey) noexcept {
    const Binding* b = binding_of(eckey);
    if (b == nullptr) return unbound<ECDSA_SIG*>(nullptr);
    return boundary(b, static_cast<ECDSA_SIG*>(nullptr), [&]() -> ECDSA_SIG* {
        std::vector<uint8_t> der;
        if (!ecdsa_sign(*b, dgst, dlen, eckey, der)) return nullptr;
        const unsigned char* p = der.data();
        ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
        if (sig == nullptr) fail(*b, ErrorCode::protocol_error, "the ECDSA signature is not DER");
        return sig;
    });
}

// ---- RSA: the RSA_METHOD (direct RSA_sign() callers, refusal of everything raw) and the
// EVP_PKEY_METHOD (every EVP_DigestSign / EVP_PKEY_sign of a key with our ENGINE) ---------

DigestId digest_of_nid(int nid) {
    switch (nid) {
        case NID_sha256: return DigestId::sha256;
        case NID_sha384: return DigestId::sha384;
        case NID_sha512: return DigestId::sha512;
        default: return DigestId::other;
    }
}

bool rsa_sign_digest(const Binding& b, const SignSettings& settings, const unsigned char* digest, size_t dlen,
                     unsigned char* sig, size_t room, size_t& len) {
    auto scheme = select_scheme(KeyKind::rsa, settings);
    if (scheme.ok() && dlen != digest_size(settings.digest)) {
        fail(b, ErrorCode::invalid_argument, "input is not a digest of the selected hash");
        return false;
    }
    std::vector<uint8_t> out;
    return sign(b, scheme, {digest, dlen}, out) && put(b, out, sig, room, len);
}

int rsa_sign(int type, const unsigned char* m, unsigned int m_length, unsigned char* sigret, unsigned int* siglen,
             const RSA* rsa) noexcept {
    const Binding* b = binding_of(rsa);
    if (b == nullptr) return unbound(0);
    return boundary(b, 0, [&] {
        SignSettings s;
        s.digest = digest_of_nid(type);
        const char* name = OBJ_nid2sn(type);
        s.digest_name = name != nullptr ? name : "";
        s.padding = Padding::pkcs1;
        size_t len = 0;
        if (!rsa_sign_digest(*b, s, m, m_length, sigret, static_cast<size_t>(RSA_size(rsa)), len)) return 0;
        *siglen = static_cast<unsigned int>(len);
        return 1;
    });
}

int rsa_refuse_raw(int /*flen*/, const unsigned char* /*from*/, unsigned char* /*to*/, RSA* rsa,
                   int /*padding*/) noexcept {
    const Binding* b = binding_of(rsa);
    if (b == nullptr) return unbound(-1);
    return boundary(b, -1, [&] {
        fail(*b, ErrorCode::unsupported_scheme, "raw RSA private-key operations are not offered");
        return -1;
    });
}

// The request as the EVP_PKEY_CTX holds it: digest, padding, PSS salt length and MGF1.
Result<SignSettings> settings_of(EVP_PKEY_CTX* ctx) {
    const EVP_MD* md = nullptr;
    if (EVP_PKEY_CTX_get_signature_md(ctx, &md) <= 0 || md == nullptr)
        return Status{ErrorCode::invalid_argument, "set a digest for RSA signing (no raw RSA operations)"};
    int padding = RSA_PKCS1_PADDING;
    EVP_PKEY_CTX_get_rsa_padding(ctx, &padding);
    auto pad = padding_from_int(padding);
    if (!pad.ok()) return pad.status();
    SignSettings s;
    s.digest = digest_of_nid(EVP_MD_get_type(md));
    s.digest_name = EVP_MD_get0_name(md);
    s.padding = pad.value();
    if (s.padding == Padding::pss) {
        int salt = kSaltDigest;
        EVP_PKEY_CTX_get_rsa_pss_saltlen(ctx, &salt);
        s.saltlen = salt;
        const EVP_MD* mgf1 = nullptr;
        if (EVP_PKEY_CTX_get_rsa_mgf1_md(ctx, &mgf1) > 0 && mgf1 != nullptr)
            s.mgf1 = digest_of_nid(EVP_MD_get_type(mgf1));
    }
    return s;
}

int pkey_rsa_sign(EVP_PKEY_CTX* ctx, unsigned char* sig, size_t* siglen, const unsigned char* tbs,
                  size_t tbslen) noexcept {
    EVP_PKEY* pkey = EVP_PKEY_CTX_get0_pkey(ctx);
    const RSA* rsa = pkey != nullptr ? EVP_PKEY_get0_RSA(pkey) : nullptr;
    const Binding* b = rsa != nullptr ? binding_of(rsa) : nullptr;
    if (b == nullptr) return methods().builtin_rsa_sign(ctx, sig, siglen, tbs, tbslen);  // not ours
    return boundary(b, 0, [&] {
        const size_t size = static_cast<size_t>(RSA_size(rsa));
        if (sig == nullptr) {
            *siglen = size;
            return 1;
        }
        auto settings = settings_of(ctx);
        if (!settings.ok()) {
            fail(*b, settings.status().code, cause_of(settings.status()));
            return 0;
        }
        return rsa_sign_digest(*b, settings.value(), tbs, tbslen, sig, *siglen < size ? *siglen : size, *siglen) ? 1
                                                                                                                 : 0;
    });
}

// ---- the methods, made once --------------------------------------------------------------

void free_ref(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/, void* /*argp*/) {
    delete static_cast<BindingRef*>(ptr);
}

// EC_KEY_dup / RSA copies copy ex_data pointers; each copy needs its own reference.
int dup_ref(CRYPTO_EX_DATA* /*to*/, const CRYPTO_EX_DATA* /*from*/, void** from_d, int /*idx*/, long /*argl*/,
            void* /*argp*/) {
    auto** slot = reinterpret_cast<BindingRef**>(from_d);
    if (*slot != nullptr) *slot = new (std::nothrow) BindingRef(**slot);
    return *slot != nullptr ? 1 : 0;
}

Methods* build_methods() noexcept {
    auto* m = new (std::nothrow) Methods;  // lives as long as the process: keys may outlive any owner
    if (m == nullptr) return nullptr;
    m->ec_index = EC_KEY_get_ex_new_index(0, nullptr, nullptr, dup_ref, free_ref);
    m->rsa_index = RSA_get_ex_new_index(0, nullptr, nullptr, dup_ref, free_ref);

    m->ec = EC_KEY_METHOD_new(EC_KEY_OpenSSL());  // verification and key handling stay OpenSSL's
    // No sign_setup: precomputing (k^-1, r) needs the private key, which only the signer has.
    if (m->ec != nullptr) EC_KEY_METHOD_set_sign(m->ec, ec_sign, nullptr, ec_sign_sig);

    m->rsa = RSA_meth_dup(RSA_PKCS1_OpenSSL());  // public operations stay OpenSSL's
    if (m->rsa != nullptr &&
        (RSA_meth_set1_name(m->rsa, "keyward RSA key held elsewhere") != 1 ||
         RSA_meth_set_sign(m->rsa, rsa_sign) != 1 || RSA_meth_set_priv_enc(m->rsa, rsa_refuse_raw) != 1 ||
         RSA_meth_set_priv_dec(m->rsa, rsa_refuse_raw) != 1 ||
         RSA_meth_set_flags(m->rsa, RSA_meth_get_flags(m->rsa) | RSA_FLAG_EXT_PKEY) != 1)) {
        RSA_meth_free(m->rsa);
        m->rsa = nullptr;
    }

    const EVP_PKEY_METHOD* builtin = EVP_PKEY_meth_find(EVP_PKEY_RSA);
    m->rsa_pkey = builtin != nullptr ? EVP_PKEY_meth_new(EVP_PKEY_RSA, 0) : nullptr;
    if (m->rsa_pkey != nullptr) {
        EVP_PKEY_meth_copy(m->rsa_pkey, builtin);
        int (*sign_init)(EVP_PKEY_CTX*) = nullptr;
        EVP_PKEY_meth_get_sign(builtin, &sign_init, &m->builtin_rsa_sign);
        EVP_PKEY_meth_set_sign(m->rsa_pkey, sign_init, pkey_rsa_sign);
    }
    return m;
}

const Methods& methods() noexcept {
    static const Methods none;
    static const Methods* built = build_methods();
    return built != nullptr ? *built : none;
}

Status cannot_make(const LegacySigner& signer, std::string_view what) {
    return {ErrorCode::internal, "key " + signer.name + ": cannot make " + std::string(what) + " key object"};
}

// Takes `binding` into the key's ex_data; on failure nothing is leaked.
Result<ossl::PKey> wrap_ec(EC_KEY* ec, BindingRef binding) {
    const Methods& m = methods();
    ossl::PKey pkey(EVP_PKEY_new());
    auto* ref = new (std::nothrow) BindingRef(binding);
    if (ec == nullptr || m.ec == nullptr || m.ec_index < 0 || !pkey || ref == nullptr ||
        EC_KEY_set_method(ec, m.ec) != 1 || EC_KEY_set_ex_data(ec, m.ec_index, ref) != 1) {
        delete ref;
        EC_KEY_free(ec);
        return cannot_make(binding->signer, "an EC");
    }
    if (EVP_PKEY_assign_EC_KEY(pkey.get(), ec) != 1) {  // on failure ec (holding ref) is still ours
        EC_KEY_free(ec);
        return cannot_make(binding->signer, "an EC");
    }
    return pkey;
}

Result<ossl::PKey> wrap_rsa(RSA* rsa, BindingRef binding, ENGINE* engine) {
    const Methods& m = methods();
    ossl::PKey pkey(EVP_PKEY_new());
    auto* ref = new (std::nothrow) BindingRef(binding);
    if (rsa == nullptr || m.rsa == nullptr || m.rsa_index < 0 || !pkey || ref == nullptr ||
        RSA_set_method(rsa, m.rsa) != 1 || RSA_set_ex_data(rsa, m.rsa_index, ref) != 1) {
        delete ref;
        RSA_free(rsa);
        return cannot_make(binding->signer, "an RSA");
    }
    if (EVP_PKEY_assign_RSA(pkey.get(), rsa) != 1) {
        RSA_free(rsa);
        return cannot_make(binding->signer, "an RSA");
    }
    // The engine's EVP_PKEY_METHOD for this key only (not a process-wide default).
    if (engine != nullptr && EVP_PKEY_set1_engine(pkey.get(), engine) != 1)
        return cannot_make(binding->signer, "an RSA");
    return pkey;
}

}  // namespace

Result<ossl::PKey> make_legacy_pkey(std::span<const uint8_t> spki, std::shared_ptr<void> owner,
                                    const std::type_info& owner_type, LegacySigner signer, ENGINE* engine) {
    const std::string name = signer.name;
    const unsigned char* p = spki.data();
    ossl::PKey pub(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())));
    if (!pub) return Status{ErrorCode::protocol_error, "key " + name + ": the public key does not parse"};
    auto binding = std::make_shared<const Binding>(Binding{std::move(owner), &owner_type, std::move(signer)});
    // Independent legacy key objects, whose methods we may replace.
    p = spki.data();
    switch (EVP_PKEY_get_base_id(pub.get())) {
        case EVP_PKEY_EC: return wrap_ec(d2i_EC_PUBKEY(nullptr, &p, static_cast<long>(spki.size())), binding);
        case EVP_PKEY_RSA:
            return wrap_rsa(d2i_RSA_PUBKEY(nullptr, &p, static_cast<long>(spki.size())), binding, engine);
        default:
            return Status{ErrorCode::unsupported_scheme, "key " + name + ": only EC and RSA keys can be used here"};
    }
}

void* legacy_key_owner(const EVP_PKEY* pkey, const std::type_info& owner_type) noexcept {
    if (pkey == nullptr) return nullptr;
    const Binding* b = nullptr;
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC) {
        if (const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(pkey)) b = binding_of(ec);
    } else if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA) {
        if (const RSA* rsa = EVP_PKEY_get0_RSA(pkey)) b = binding_of(rsa);
    }
    return b != nullptr && *b->owner_type == owner_type ? b->owner.get() : nullptr;
}

EVP_PKEY_METHOD* legacy_rsa_pkey_method() noexcept { return methods().rsa_pkey; }

}  // namespace keyward
