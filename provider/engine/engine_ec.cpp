#define OPENSSL_SUPPRESS_DEPRECATED  // the ENGINE and EC_KEY_METHOD APIs are what engines have
#include "provider/engine/engine_ec.hpp"

#include <openssl/ecdsa.h>
#include <openssl/err.h>

#include <cstring>
#include <new>
#include <vector>

#include "core/scheme_select.hpp"

namespace keyward::engine {

namespace {

int ex_index = -1;
EC_KEY_METHOD* method = nullptr;

void free_key_data(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/, void* /*argp*/) {
    delete static_cast<EngineKey*>(ptr);
}

// EC_KEY_dup copies ex_data pointers; the copy needs its own EngineKey.
int dup_key_data(CRYPTO_EX_DATA* /*to*/, const CRYPTO_EX_DATA* /*from*/, void** from_d, int /*idx*/, long /*argl*/,
                 void* /*argp*/) {
    auto** slot = reinterpret_cast<EngineKey**>(from_d);
    if (*slot != nullptr) *slot = new (std::nothrow) EngineKey(**slot);
    return 1;
}

// Asks the agent for an ECDSA signature (DER) over `dgst`, which ECDSA treats as a number
// of the curve's size (see provider/scheme_select.hpp).
bool agent_sign(const unsigned char* dgst, int dlen, EC_KEY* eckey, std::vector<uint8_t>& der) {
    auto* key = static_cast<EngineKey*>(EC_KEY_get_ex_data(eckey, ex_index));
    if (key == nullptr) {
        raise(provider::Reason::not_our_key, "keyward engine: this EC key is not held by the agent");
        return false;
    }
    const EC_GROUP* group = EC_KEY_get0_group(eckey);
    const int bits = group != nullptr ? EC_GROUP_order_bits(group) : 0;
    auto scheme = keyward::select_scheme(keyward::KeyKind::ec, {}, bits);
    if (!scheme.ok()) {
        raise(provider::Reason::unsupported, scheme.status().message + " (key " + key->name + ")");
        return false;
    }
    auto input = keyward::fit_ecdsa_input({dgst, static_cast<size_t>(dlen)}, static_cast<size_t>(bits) / 8);
    auto answer = key->client->sign(key->name, scheme.value(), input);
    if (!answer.ok()) {
        raise_status(answer.status(), *key, "signing");
        return false;
    }
    der = std::move(answer.value());
    debug("signed with key " + key->name);
    return true;
}

int ec_sign(int /*type*/, const unsigned char* dgst, int dlen, unsigned char* sig, unsigned int* siglen,
            const BIGNUM* /*kinv*/, const BIGNUM* /*r*/, EC_KEY* eckey) noexcept {
    try {
        std::vector<uint8_t> der;
        if (!agent_sign(dgst, dlen, eckey, der)) return 0;
        if (der.size() > static_cast<size_t>(ECDSA_size(eckey))) {
            raise(provider::Reason::internal, "keyward engine: the agent's signature does not fit");
            return 0;
        }
        std::memcpy(sig, der.data(), der.size());
        *siglen = static_cast<unsigned int>(der.size());
        return 1;
    } catch (const std::exception& e) {
        raise(provider::Reason::internal, std::string("keyward engine: ") + e.what());
        return 0;
    }
}

ECDSA_SIG* ec_sign_sig(const unsigned char* dgst, int dlen, const BIGNUM* /*kinv*/, const BIGNUM* /*r*/,
                       EC_KEY* eckey) noexcept {
    try {
        std::vector<uint8_t> der;
        if (!agent_sign(dgst, dlen, eckey, der)) return nullptr;
        const unsigned char* p = der.data();
        ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
        if (sig == nullptr) raise(provider::Reason::agent_error, "keyward engine: the agent's ECDSA signature is not DER");
        return sig;
    } catch (const std::exception& e) {
        raise(provider::Reason::internal, std::string("keyward engine: ") + e.what());
        return nullptr;
    }
}

}  // namespace

bool ec_setup() {
    if (method != nullptr) return true;
    ex_index = EC_KEY_get_ex_new_index(0, nullptr, nullptr, dup_key_data, free_key_data);
    if (ex_index < 0) return false;
    method = EC_KEY_METHOD_new(EC_KEY_OpenSSL());  // keeps OpenSSL's verify and key handling
    if (method == nullptr) return false;
    // No sign_setup: precomputing (k^-1, r) needs the private key, which only the device has.
    EC_KEY_METHOD_set_sign(method, ec_sign, nullptr, ec_sign_sig);
    return true;
}

void ec_teardown() {
    // Keys handed out may outlive the engine; the method stays until the process ends.
}

EVP_PKEY* ec_make_pkey(EC_KEY* pub, std::unique_ptr<EngineKey> key) {
    if (!ec_setup() || EC_KEY_set_method(pub, method) != 1 || EC_KEY_set_ex_data(pub, ex_index, key.get()) != 1) {
        EC_KEY_free(pub);
        return nullptr;
    }
    key.release();  // owned by the EC_KEY's ex_data now
    EVP_PKEY* pkey = EVP_PKEY_new();
    if (pkey == nullptr || EVP_PKEY_assign_EC_KEY(pkey, pub) != 1) {
        EVP_PKEY_free(pkey);
        EC_KEY_free(pub);
        return nullptr;
    }
    return pkey;
}

}  // namespace keyward::engine
