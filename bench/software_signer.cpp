// The software ceiling: OpenSSL signing with a key in this process's memory.
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <memory>

#include "bench/signers.hpp"

namespace keyward::bench {
namespace {

struct PkeyFree {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct PkeyCtxFree {
    void operator()(EVP_PKEY_CTX* c) const noexcept { EVP_PKEY_CTX_free(c); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;

class SoftwareThreadSigner : public ThreadSigner {
public:
    explicit SoftwareThreadSigner(PkeyCtxPtr ctx) : ctx_(std::move(ctx)) {}

    bool sign_once(std::string& error) override {
        unsigned char sig[512];
        size_t len = sizeof sig;
        if (EVP_PKEY_sign(ctx_.get(), sig, &len, kDigest, sizeof kDigest) != 1) {
            error = "EVP_PKEY_sign failed";
            return false;
        }
        return true;
    }

private:
    PkeyCtxPtr ctx_;
};

class SoftwareSigner : public Signer {
public:
    explicit SoftwareSigner(KeyKind kind) : kind_(kind) {}

    bool setup(std::string& error) {
        key_.reset(kind_ == KeyKind::ec_p256 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                                             : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
        if (!key_) error = "key generation failed";
        return key_ != nullptr;
    }

    std::unique_ptr<ThreadSigner> for_thread(std::string& error) override {
        PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr));
        if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) != 1 ||
            (kind_ == KeyKind::rsa_2048 && EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1)) {
            error = "EVP_PKEY_sign_init failed";
            return nullptr;
        }
        return std::make_unique<SoftwareThreadSigner>(std::move(ctx));
    }

private:
    KeyKind kind_;
    PkeyPtr key_;
};

}  // namespace

std::unique_ptr<Signer> make_software_signer(const Options&, KeyKind kind, std::string& error) {
    auto s = std::make_unique<SoftwareSigner>(kind);
    if (!s->setup(error)) return nullptr;
    return s;
}

}  // namespace keyward::bench
