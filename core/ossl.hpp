// One RAII family for OpenSSL objects: `ossl::X509`, `ossl::PKey`, ... are unique_ptrs
// that free with the object's own *_free function. Use these instead of local deleters;
// add a line here for a type that is missing.
#pragma once

#include <memory>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace keyward::ossl {

template <auto FreeFn>
struct Free {
    template <typename T>
    void operator()(T* p) const noexcept {
        FreeFn(p);
    }
};

template <typename T, auto FreeFn>
using Ptr = std::unique_ptr<T, Free<FreeFn>>;

// Keys, digests, parameters.
using PKey = Ptr<EVP_PKEY, EVP_PKEY_free>;
using PKeyCtx = Ptr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using Md = Ptr<EVP_MD, EVP_MD_free>;
using MdCtx = Ptr<EVP_MD_CTX, EVP_MD_CTX_free>;
using Bn = Ptr<BIGNUM, BN_free>;
using EcdsaSig = Ptr<ECDSA_SIG, ECDSA_SIG_free>;
using Params = Ptr<OSSL_PARAM, OSSL_PARAM_free>;
using ParamBld = Ptr<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;

// I/O.
using Bio = Ptr<BIO, BIO_free_all>;
using SslCtx = Ptr<SSL_CTX, SSL_CTX_free>;
using Ssl = Ptr<SSL, SSL_free>;

// Certificates and requests.
using Cert = Ptr<X509, X509_free>;
using Req = Ptr<X509_REQ, X509_REQ_free>;
using Name = Ptr<X509_NAME, X509_NAME_free>;
using Algor = Ptr<X509_ALGOR, X509_ALGOR_free>;
using Store = Ptr<X509_STORE, X509_STORE_free>;
using StoreCtx = Ptr<X509_STORE_CTX, X509_STORE_CTX_free>;
using BitString = Ptr<ASN1_BIT_STRING, ASN1_BIT_STRING_free>;
using Asn1String = Ptr<ASN1_STRING, ASN1_STRING_free>;
using Extension = Ptr<X509_EXTENSION, X509_EXTENSION_free>;
using GeneralName = Ptr<GENERAL_NAME, GENERAL_NAME_free>;
using GeneralNames = Ptr<GENERAL_NAMES, GENERAL_NAMES_free>;
using Eku = Ptr<EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free>;

// Stacks: the owning one frees its elements, the view only the stack.
inline void free_extensions(STACK_OF(X509_EXTENSION) * s) { sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free); }
using Extensions = std::unique_ptr<STACK_OF(X509_EXTENSION), Free<free_extensions>>;
inline void free_certs(STACK_OF(X509) * s) { sk_X509_pop_free(s, X509_free); }
using Certs = std::unique_ptr<STACK_OF(X509), Free<free_certs>>;
inline void free_cert_view(STACK_OF(X509) * s) { sk_X509_free(s); }
using CertView = std::unique_ptr<STACK_OF(X509), Free<free_cert_view>>;

// Memory OpenSSL allocated for us (i2d_* outputs and the like).
inline void free_bytes(unsigned char* p) { OPENSSL_free(p); }
using Bytes = std::unique_ptr<unsigned char, Free<free_bytes>>;
inline void free_chars(char* p) { OPENSSL_free(p); }
using Chars = std::unique_ptr<char, Free<free_chars>>;

}  // namespace keyward::ossl
