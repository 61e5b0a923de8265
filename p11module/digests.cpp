// C_DigestInit / C_Digest / C_DigestUpdate / C_DigestFinal with OpenSSL's default provider.
#include <cstring>

#include "p11module/module.hpp"

namespace keyward::p11module {

namespace {

// The finished digest into `out` unless the caller only asks for the size (or gave too
// little room): then the operation stays as it was.
CK_RV finish(Session& s, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
    const auto size = static_cast<CK_ULONG>(EVP_MD_CTX_get_size(s.digest.get()));
    if (!out || *out_len < size) {
        const CK_RV rv = out ? CKR_BUFFER_TOO_SMALL : CKR_OK;
        *out_len = size;
        return rv;
    }
    unsigned int n = 0;
    const bool ok = EVP_DigestFinal_ex(s.digest.get(), out, &n) == 1;
    s.digest.reset();
    if (!ok) return CKR_FUNCTION_FAILED;
    *out_len = n;
    return CKR_OK;
}

}  // namespace

CK_RV digest_init(Session& s, CK_MECHANISM_TYPE type) {
    if (s.digest) return CKR_OPERATION_ACTIVE;
    const DigestMechanism* d = find_digest(type);
    if (!d) return CKR_MECHANISM_INVALID;
    ossl::Md md(EVP_MD_fetch(nullptr, std::string(d->name).c_str(), "provider=default"));
    ossl::MdCtx ctx(EVP_MD_CTX_new());
    if (!md || !ctx || EVP_DigestInit_ex(ctx.get(), md.get(), nullptr) != 1) return CKR_HOST_MEMORY;
    s.digest = std::move(ctx);
    return CKR_OK;
}

CK_RV digest(Session& s, std::span<const uint8_t> data, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
    if (!s.digest) return CKR_OPERATION_NOT_INITIALIZED;
    if (out && *out_len >= static_cast<CK_ULONG>(EVP_MD_CTX_get_size(s.digest.get())) &&
        EVP_DigestUpdate(s.digest.get(), data.data(), data.size()) != 1) {
        s.digest.reset();
        return CKR_FUNCTION_FAILED;
    }
    return finish(s, out, out_len);
}

CK_RV digest_update(Session& s, std::span<const uint8_t> data) {
    if (!s.digest) return CKR_OPERATION_NOT_INITIALIZED;
    if (EVP_DigestUpdate(s.digest.get(), data.data(), data.size()) != 1) {
        s.digest.reset();
        return CKR_FUNCTION_FAILED;
    }
    return CKR_OK;
}

CK_RV digest_final(Session& s, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
    if (!s.digest) return CKR_OPERATION_NOT_INITIALIZED;
    return finish(s, out, out_len);
}

}  // namespace keyward::p11module
