// OpenSSL 3.0 routes a key whose EC_KEY_METHOD / RSA_METHOD is not its own ("foreign")
// through the legacy EVP_PKEY_METHODs, which end in the method's sign callback: the one
// place OpenSSL lets a caller-supplied function make the signature without a provider.
// (A provider of our own inside keywardd would do the same with far more code.)
#define OPENSSL_SUPPRESS_DEPRECATED  // EC_KEY_METHOD and RSA_METHOD are deprecated in 3.0
#include "agent/lifecycle/cmp/device_pkey.hpp"

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cstring>
#include <mutex>
#include <new>

#include "core/scheme_select.hpp"

namespace keyward::lifecycle {

namespace {

struct DeviceKey {
    KeyAccess keys;
    std::string name;
    std::vector<Scheme> schemes;
    std::mutex mu;
    Status last_error;

    void record(const Status& status) {
        std::lock_guard lock(mu);
        last_error = status;
    }
};
using DeviceKeyRef = std::shared_ptr<DeviceKey>;  // what ex_data points at (one per EC_KEY / RSA)

void free_ref(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/, void* /*argp*/) {
    delete static_cast<DeviceKeyRef*>(ptr);
}

// EC_KEY_dup / RSA copies keep pointing at the same device key.
int dup_ref(CRYPTO_EX_DATA* /*to*/, const CRYPTO_EX_DATA* /*from*/, void** from_d, int /*idx*/, long /*argl*/,
            void* /*argp*/) {
    auto** slot = reinterpret_cast<DeviceKeyRef**>(from_d);
    if (*slot != nullptr) *slot = new (std::nothrow) DeviceKeyRef(**slot);
    return *slot != nullptr ? 1 : 0;
}

void raise(const std::string& message) {
    ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL, "%s", message.c_str());
}

struct Methods {
    int ec_index = -1;
    int rsa_index = -1;
    EC_KEY_METHOD* ec = nullptr;
    RSA_METHOD* rsa = nullptr;
};

DeviceKey* ec_key_of(const EC_KEY* ec);
DeviceKey* rsa_key_of(const RSA* rsa);

bool has_scheme(const DeviceKey& key, Scheme scheme) {
    for (Scheme s : key.schemes)
        if (s == scheme) return true;
    return false;
}

// Signs through the agent; on failure the device's reason is kept and put on the error queue.
bool device_sign(DeviceKey& key, Scheme scheme, std::span<const uint8_t> digest, std::vector<uint8_t>& out) {
    if (!has_scheme(key, scheme)) {
        Status s{ErrorCode::unsupported_scheme, "key " + key.name + " cannot sign " +
                                                    std::string(scheme_info(scheme)->name)};
        key.record(s);
        raise(s.message);
        return false;
    }
    auto answer = key.keys.sign(key.name, scheme, digest);
    if (!answer.ok()) {
        key.record(answer.status());
        raise("key " + key.name + ": " + answer.status().message);
        return false;
    }
    key.record(Status::success());
    out = std::move(answer.value());
    return true;
}

bool ec_device_sign(const unsigned char* dgst, int dlen, EC_KEY* eckey, std::vector<uint8_t>& der) {
    DeviceKey* key = ec_key_of(eckey);
    const EC_GROUP* group = EC_KEY_get0_group(eckey);
    if (key == nullptr || group == nullptr || dlen < 0) {
        raise("not a device key");
        return false;
    }
    const int bits = EC_GROUP_order_bits(group);
    const auto scheme = ecdsa_scheme_for(bits);
    if (!scheme) {
        raise("ECDSA on a " + std::to_string(bits) + "-bit curve is not supported");
        return false;
    }
    auto input = keyward::fit_ecdsa_input({dgst, static_cast<size_t>(dlen)}, static_cast<size_t>(bits + 7) / 8);
    return device_sign(*key, *scheme, input, der);
}

int ec_sign(int /*type*/, const unsigned char* dgst, int dlen, unsigned char* sig, unsigned int* siglen,
            const BIGNUM* /*kinv*/, const BIGNUM* /*r*/, EC_KEY* eckey) noexcept {
    try {
        std::vector<uint8_t> der;
        if (!ec_device_sign(dgst, dlen, eckey, der)) return 0;
        if (der.size() > static_cast<size_t>(ECDSA_size(eckey))) {
            raise("the device's ECDSA signature is too long");
            return 0;
        }
        std::memcpy(sig, der.data(), der.size());
        *siglen = static_cast<unsigned int>(der.size());
        return 1;
    } catch (const std::exception& e) {
        raise(e.what());
        return 0;
    }
}

ECDSA_SIG* ec_sign_sig(const unsigned char* dgst, int dlen, const BIGNUM* /*kinv*/, const BIGNUM* /*r*/,
                       EC_KEY* eckey) noexcept {
    try {
        std::vector<uint8_t> der;
        if (!ec_device_sign(dgst, dlen, eckey, der)) return nullptr;
        const unsigned char* p = der.data();
        ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
        if (sig == nullptr) raise("the device's ECDSA signature is not DER");
        return sig;
    } catch (const std::exception& e) {
        raise(e.what());
        return nullptr;
    }
}

int rsa_sign(int type, const unsigned char* m, unsigned int m_length, unsigned char* sigret, unsigned int* siglen,
             const RSA* rsa) noexcept {
    try {
        DeviceKey* key = rsa_key_of(rsa);
        if (key == nullptr) {
            raise("not a device key");
            return 0;
        }
        Scheme scheme;
        switch (type) {
            case NID_sha256: scheme = Scheme::rsa_pkcs1_sha256; break;
            case NID_sha384: scheme = Scheme::rsa_pkcs1_sha384; break;
            case NID_sha512: scheme = Scheme::rsa_pkcs1_sha512; break;
            default:
                raise(std::string("key ") + key->name + ": digest " + OBJ_nid2sn(type) +
                      " is not offered (SHA-256, SHA-384, SHA-512)");
                return 0;
        }
        std::vector<uint8_t> out;
        if (!device_sign(*key, scheme, {m, m_length}, out)) return 0;
        if (out.size() > static_cast<size_t>(RSA_size(rsa))) {
            raise("the device's RSA signature is too long");
            return 0;
        }
        std::memcpy(sigret, out.data(), out.size());
        *siglen = static_cast<unsigned int>(out.size());
        return 1;
    } catch (const std::exception& e) {
        raise(e.what());
        return 0;
    }
}

// The agent never offers raw RSA (it would be a decryption oracle); neither does this key.
int rsa_refuse_raw(int /*flen*/, const unsigned char* /*from*/, unsigned char* /*to*/, RSA* /*rsa*/,
                   int /*padding*/) noexcept {
    raise("raw RSA private-key operations are not offered for device keys");
    return -1;
}

const Methods* methods() {
    static const Methods* built = [] {
        auto* m = new Methods;  // lives as long as the process: keys may outlive any owner
        m->ec_index = EC_KEY_get_ex_new_index(0, nullptr, nullptr, dup_ref, free_ref);
        m->rsa_index = RSA_get_ex_new_index(0, nullptr, nullptr, dup_ref, free_ref);
        m->ec = EC_KEY_METHOD_new(EC_KEY_OpenSSL());  // verification and key handling stay OpenSSL's
        if (m->ec != nullptr) EC_KEY_METHOD_set_sign(m->ec, ec_sign, nullptr, ec_sign_sig);
        m->rsa = RSA_meth_dup(RSA_PKCS1_OpenSSL());
        if (m->rsa != nullptr &&
            (RSA_meth_set1_name(m->rsa, "keyward device RSA key") != 1 || RSA_meth_set_sign(m->rsa, rsa_sign) != 1 ||
             RSA_meth_set_priv_enc(m->rsa, rsa_refuse_raw) != 1 || RSA_meth_set_priv_dec(m->rsa, rsa_refuse_raw) != 1 ||
             RSA_meth_set_flags(m->rsa, RSA_meth_get_flags(m->rsa) | RSA_FLAG_EXT_PKEY) != 1)) {
            RSA_meth_free(m->rsa);
            m->rsa = nullptr;
        }
        return m;
    }();
    return built;
}

DeviceKey* ec_key_of(const EC_KEY* ec) {
    auto* ref = static_cast<DeviceKeyRef*>(EC_KEY_get_ex_data(ec, methods()->ec_index));
    return ref != nullptr ? ref->get() : nullptr;
}

DeviceKey* rsa_key_of(const RSA* rsa) {
    auto* ref = static_cast<DeviceKeyRef*>(RSA_get_ex_data(rsa, methods()->rsa_index));
    return ref != nullptr ? ref->get() : nullptr;
}

Result<PkeyPtr> wrap_ec(const EVP_PKEY* pub, const DeviceKeyRef& key) {
    const Methods* m = methods();
    EC_KEY* ec = EVP_PKEY_get1_EC_KEY(const_cast<EVP_PKEY*>(pub));
    PkeyPtr pkey(EVP_PKEY_new());
    auto* ref = new (std::nothrow) DeviceKeyRef(key);
    if (ec == nullptr || m->ec == nullptr || !pkey || ref == nullptr || EC_KEY_set_method(ec, m->ec) != 1 ||
        EC_KEY_set_ex_data(ec, m->ec_index, ref) != 1) {
        delete ref;
        EC_KEY_free(ec);
        return Status{ErrorCode::internal, "cannot make an EC key object for " + key->name};
    }
    if (EVP_PKEY_assign_EC_KEY(pkey.get(), ec) != 1) {  // on failure ec (holding ref) is still ours
        EC_KEY_free(ec);
        return Status{ErrorCode::internal, "cannot make an EC key object for " + key->name};
    }
    return pkey;
}

Result<PkeyPtr> wrap_rsa(const EVP_PKEY* pub, const DeviceKeyRef& key) {
    const Methods* m = methods();
    RSA* rsa = EVP_PKEY_get1_RSA(const_cast<EVP_PKEY*>(pub));
    PkeyPtr pkey(EVP_PKEY_new());
    auto* ref = new (std::nothrow) DeviceKeyRef(key);
    if (rsa == nullptr || m->rsa == nullptr || !pkey || ref == nullptr || RSA_set_method(rsa, m->rsa) != 1 ||
        RSA_set_ex_data(rsa, m->rsa_index, ref) != 1) {
        delete ref;
        RSA_free(rsa);
        return Status{ErrorCode::internal, "cannot make an RSA key object for " + key->name};
    }
    if (EVP_PKEY_assign_RSA(pkey.get(), rsa) != 1) {
        RSA_free(rsa);
        return Status{ErrorCode::internal, "cannot make an RSA key object for " + key->name};
    }
    return pkey;
}

}  // namespace

Result<PkeyPtr> make_device_pkey(const KeyAccess& keys, const std::string& key_name) {
    auto info = keys.describe(key_name);
    if (!info.ok()) return info.status();
    const unsigned char* p = info->spki.data();
    PkeyPtr pub(d2i_PUBKEY(nullptr, &p, static_cast<long>(info->spki.size())));
    if (!pub) return Status{ErrorCode::internal, "key " + key_name + ": the device's public key does not parse"};
    auto key = std::make_shared<DeviceKey>();
    key->keys = keys;
    key->name = key_name;
    key->schemes = info->schemes;
    switch (EVP_PKEY_get_base_id(pub.get())) {
        case EVP_PKEY_EC: return wrap_ec(pub.get(), key);
        case EVP_PKEY_RSA: return wrap_rsa(pub.get(), key);
        default:
            return Status{ErrorCode::unsupported_scheme, "key " + key_name + ": only EC and RSA keys can be used here"};
    }
}

Status last_device_error(EVP_PKEY* pkey) {
    if (pkey == nullptr) return {};
    DeviceKey* key = nullptr;
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC) {
        if (const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(pkey)) key = ec_key_of(ec);
    } else if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA) {
        if (const RSA* rsa = EVP_PKEY_get0_RSA(pkey)) key = rsa_key_of(rsa);
    }
    if (key == nullptr) return {};
    std::lock_guard lock(key->mu);
    return key->last_error;
}

}  // namespace keyward::lifecycle
