// unique_ptr aliases for the OpenSSL objects the CLI and the CSR builder hold.
#pragma once

#include <memory>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace keyward::ossl {

template <auto FreeFn>
struct Free {
    template <typename T>
    void operator()(T* p) const noexcept { FreeFn(p); }
};

using Bio = std::unique_ptr<BIO, Free<BIO_free_all>>;
using PKey = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY_free>>;
using Md = std::unique_ptr<EVP_MD, Free<EVP_MD_free>>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, Free<EVP_MD_CTX_free>>;
using Req = std::unique_ptr<X509_REQ, Free<X509_REQ_free>>;
using Name = std::unique_ptr<X509_NAME, Free<X509_NAME_free>>;
using Algor = std::unique_ptr<X509_ALGOR, Free<X509_ALGOR_free>>;
using BitString = std::unique_ptr<ASN1_BIT_STRING, Free<ASN1_BIT_STRING_free>>;
using Extension = std::unique_ptr<X509_EXTENSION, Free<X509_EXTENSION_free>>;
using GeneralName = std::unique_ptr<GENERAL_NAME, Free<GENERAL_NAME_free>>;
using GeneralNames = std::unique_ptr<GENERAL_NAMES, Free<GENERAL_NAMES_free>>;
using Eku = std::unique_ptr<EXTENDED_KEY_USAGE, Free<EXTENDED_KEY_USAGE_free>>;
using Asn1String = std::unique_ptr<ASN1_STRING, Free<ASN1_STRING_free>>;

inline void free_extensions(STACK_OF(X509_EXTENSION)* s) { sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free); }
using Extensions = std::unique_ptr<STACK_OF(X509_EXTENSION), Free<free_extensions>>;

inline void free_bytes(unsigned char* p) { OPENSSL_free(p); }
using Bytes = std::unique_ptr<unsigned char, Free<free_bytes>>;

}  // namespace keyward::ossl
