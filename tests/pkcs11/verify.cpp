#include "tests/pkcs11/verify.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <memory>

namespace keyward::test {
namespace {

struct PkeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct CtxFree {
    void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};

std::unique_ptr<EVP_PKEY, PkeyFree> parse(std::span<const uint8_t> spki) {
    const unsigned char* p = spki.data();
    EVP_PKEY* key = d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size()));
    if (key && p != spki.data() + spki.size()) {  // trailing bytes: not a clean SPKI
        EVP_PKEY_free(key);
        key = nullptr;
    }
    return std::unique_ptr<EVP_PKEY, PkeyFree>(key);
}

}  // namespace

bool verify_signature(std::span<const uint8_t> spki, ipc::Scheme scheme, std::span<const uint8_t> digest,
                      std::span<const uint8_t> signature) {
    const ipc::SchemeInfo* info = ipc::scheme_info(scheme);
    auto key = parse(spki);
    if (!info || !key) return false;
    std::unique_ptr<EVP_PKEY_CTX, CtxFree> ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
    const EVP_MD* md = EVP_get_digestbyname(std::string(info->digest).c_str());
    if (!ctx || !md || EVP_PKEY_verify_init(ctx.get()) <= 0 || EVP_PKEY_CTX_set_signature_md(ctx.get(), md) <= 0)
        return false;
    if (info->family == ipc::SchemeFamily::rsa_pkcs1 && EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) <= 0)
        return false;
    if (info->family == ipc::SchemeFamily::rsa_pss &&
        (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PSS_PADDING) <= 0 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(), static_cast<int>(info->digest_size)) <= 0 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), md) <= 0))
        return false;
    return EVP_PKEY_verify(ctx.get(), signature.data(), signature.size(), digest.data(), digest.size()) == 1;
}

int spki_bits(std::span<const uint8_t> spki) {
    auto key = parse(spki);
    return key ? EVP_PKEY_get_bits(key.get()) : 0;
}

std::vector<uint8_t> random_bytes(size_t n) {
    std::vector<uint8_t> out(n);
    RAND_bytes(out.data(), static_cast<int>(n));
    return out;
}

}  // namespace keyward::test
