// provider: signing through the keyward OpenSSL provider the way an OpenSSL program does
// (a key loaded from "keyward:NAME" through OSSL_STORE, EVP_PKEY_sign per signature), to
// set the PKCS#11 module's throughput beside the provider's on the same agent and key.
// --provider-path DIR (where keyward.so is) and --key NAME; KEYWARD_SOCKET names the agent.
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/store.h>

#include <memory>

#include "bench/signers.hpp"
#include "core/ossl.hpp"

namespace keyward::bench {
namespace {

class ProviderThreadSigner : public ThreadSigner {
public:
    explicit ProviderThreadSigner(ossl::PKeyCtx ctx) : ctx_(std::move(ctx)) {}

    bool sign_once(std::string& error) override {
        unsigned char sig[512];
        size_t len = sizeof sig;
        if (EVP_PKEY_sign(ctx_.get(), sig, &len, kDigest, sizeof kDigest) != 1) {
            error = "EVP_PKEY_sign through the keyward provider failed";
            return false;
        }
        return true;
    }

private:
    ossl::PKeyCtx ctx_;
};

class ProviderSigner : public Signer {
public:
    explicit ProviderSigner(KeyKind kind) : kind_(kind) {}

    bool setup(const Options& o, std::string& error) {
        if (!o.has("provider-path") || !o.has("key")) {
            error = "provider needs --provider-path and --key";
            return false;
        }
        OSSL_PROVIDER_set_default_search_path(nullptr, o.get("provider-path").c_str());
        if (!OSSL_PROVIDER_load(nullptr, "default") || !OSSL_PROVIDER_load(nullptr, "keyward")) {
            error = "cannot load the default and keyward providers";
            return false;
        }
        const std::string uri = "keyward:" + o.get("key");
        ossl::Ptr<OSSL_STORE_CTX, OSSL_STORE_close> store(
            OSSL_STORE_open(uri.c_str(), nullptr, nullptr, nullptr, nullptr));
        while (store && !key_ && !OSSL_STORE_eof(store.get())) {
            ossl::Ptr<OSSL_STORE_INFO, OSSL_STORE_INFO_free> info(OSSL_STORE_load(store.get()));
            if (info && OSSL_STORE_INFO_get_type(info.get()) == OSSL_STORE_INFO_PKEY)
                key_.reset(OSSL_STORE_INFO_get1_PKEY(info.get()));
        }
        if (!key_) error = "cannot load " + uri + " through the keyward provider";
        return key_ != nullptr;
    }

    std::unique_ptr<ThreadSigner> for_thread(std::string& error) override {
        ossl::PKeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr));
        if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) != 1 ||
            (kind_ == KeyKind::rsa_2048 && EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1)) {
            error = "EVP_PKEY_sign_init with the provider's key failed";
            return nullptr;
        }
        return std::make_unique<ProviderThreadSigner>(std::move(ctx));
    }

private:
    KeyKind kind_;
    ossl::PKey key_;
};

}  // namespace

std::unique_ptr<Signer> make_provider_signer(const Options& o, KeyKind kind, std::string& error) {
    auto s = std::make_unique<ProviderSigner>(kind);
    if (!s->setup(o, error)) return nullptr;
    return s;
}

}  // namespace keyward::bench
