// Builds a PKCS#10 request with OpenSSL and has it signed through a callback; reads the
// requests an issuer is handed.
#include "pki/csr.hpp"

#include <arpa/inet.h>

#include <algorithm>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/ossl.hpp"

namespace keyward::pki {
namespace {

Status openssl_failure(std::string what) {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        what += std::string(": ") + buf;
    }
    return {ErrorCode::internal, std::move(what)};
}

Result<ossl::PKey> parse_spki(std::span<const uint8_t> spki) {
    const unsigned char* p = spki.data();
    ossl::PKey key(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())));
    if (!key || p != spki.data() + spki.size()) {
        ERR_clear_error();
        return Status{ErrorCode::invalid_argument, "the key's public key is not a valid SubjectPublicKeyInfo"};
    }
    return key;
}

Result<Scheme> natural_scheme(EVP_PKEY* key) {
    if (EVP_PKEY_is_a(key, "RSA")) return Scheme::rsa_pkcs1_sha256;
    if (EVP_PKEY_is_a(key, "EC")) {
        char group[64] = {};
        if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, nullptr))
            return openssl_failure("cannot read the curve of the EC key");
        // The NIST curves keyward makes; ecdsa_scheme_for() decides by size.
        const std::string_view name(group);
        const bool nist = name == "prime256v1" || name == "P-256" || name == "secp384r1" || name == "P-384";
        if (auto scheme = ecdsa_scheme_for(EVP_PKEY_get_bits(key)); nist && scheme) return *scheme;
        return Status{ErrorCode::unsupported_scheme, "no signature scheme for EC curve " + std::string(name)};
    }
    return Status{ErrorCode::unsupported_scheme, "the key is neither EC nor RSA"};
}

Result<Scheme> checked_scheme(EVP_PKEY* key, std::span<const Scheme> supported) {
    auto scheme = natural_scheme(key);
    if (!scheme.ok()) return scheme;
    if (!supported.empty() && std::find(supported.begin(), supported.end(), scheme.value()) == supported.end()) {
        std::string names;
        for (auto s : supported) {
            const auto* info = scheme_info(s);
            if (!names.empty()) names += ", ";
            names += info ? std::string(info->name) : "?";
        }
        return Status{ErrorCode::unsupported_scheme, "a CSR for this key is signed with " +
                                                         std::string(scheme_info(scheme.value())->name) +
                                                         ", but its device offers only: " + names};
    }
    return scheme;
}

// The AlgorithmIdentifier of the request's signature (RFC 5758 / RFC 4055 forms).
Result<ossl::Algor> signature_algorithm(Scheme scheme) {
    int nid = NID_undef;
    int param_type = V_ASN1_UNDEF;  // ECDSA: parameters absent
    switch (scheme) {
        case Scheme::ecdsa_secp256r1_sha256: nid = NID_ecdsa_with_SHA256; break;
        case Scheme::ecdsa_secp384r1_sha384: nid = NID_ecdsa_with_SHA384; break;
        case Scheme::rsa_pkcs1_sha256:
            nid = NID_sha256WithRSAEncryption;
            param_type = V_ASN1_NULL;
            break;
        default: return Status{ErrorCode::unsupported_scheme, "CSRs are not signed with this scheme"};
    }
    ossl::Algor alg(X509_ALGOR_new());
    if (!alg || !X509_ALGOR_set0(alg.get(), OBJ_nid2obj(nid), param_type, nullptr))
        return openssl_failure("cannot build the signature algorithm");
    return alg;
}

Status add_general_name(GENERAL_NAMES* names, const SubjectAltName& san) {
    ossl::GeneralName name(GENERAL_NAME_new());
    ossl::Asn1String value(san.kind == SanKind::ip ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new());
    if (!name || !value) return openssl_failure("out of memory");
    const bool set = san.kind == SanKind::ip
                         ? ASN1_STRING_set(value.get(), san.ip.data(), static_cast<int>(san.ip.size()))
                         : ASN1_STRING_set(value.get(), san.value.data(), static_cast<int>(san.value.size()));
    if (!set) return openssl_failure("cannot store SAN " + san.value);
    int type = GEN_DNS;
    switch (san.kind) {
        case SanKind::dns: type = GEN_DNS; break;
        case SanKind::ip: type = GEN_IPADD; break;
        case SanKind::email: type = GEN_EMAIL; break;
        case SanKind::uri: type = GEN_URI; break;
    }
    GENERAL_NAME_set0_value(name.get(), type, value.release());
    if (!sk_GENERAL_NAME_push(names, name.get())) return openssl_failure("out of memory");
    name.release();
    return {};
}

Status add_extensions(X509_REQ* req, const std::vector<SubjectAltName>& sans) {
    ossl::Extensions extensions(sk_X509_EXTENSION_new_null());
    if (!extensions) return openssl_failure("out of memory");

    ossl::Eku eku(sk_ASN1_OBJECT_new_null());
    if (!eku || !sk_ASN1_OBJECT_push(eku.get(), OBJ_nid2obj(NID_client_auth))) return openssl_failure("out of memory");
    ossl::Extension eku_ext(X509V3_EXT_i2d(NID_ext_key_usage, 0, eku.get()));
    if (!eku_ext || !sk_X509_EXTENSION_push(extensions.get(), eku_ext.get()))
        return openssl_failure("cannot encode extendedKeyUsage");
    eku_ext.release();

    if (!sans.empty()) {
        ossl::GeneralNames names(sk_GENERAL_NAME_new_null());
        if (!names) return openssl_failure("out of memory");
        for (const auto& san : sans)
            if (auto s = add_general_name(names.get(), san); !s.ok()) return s;
        ossl::Extension san_ext(X509V3_EXT_i2d(NID_subject_alt_name, 0, names.get()));
        if (!san_ext || !sk_X509_EXTENSION_push(extensions.get(), san_ext.get()))
            return openssl_failure("cannot encode subjectAltName");
        san_ext.release();
    }
    if (!X509_REQ_add_extensions(req, extensions.get())) return openssl_failure("cannot add the extensionRequest");
    return {};
}

Status set_subject(X509_REQ* req, const std::vector<SubjectAttribute>& subject) {
    ossl::Name name(X509_NAME_new());
    if (!name) return openssl_failure("out of memory");
    for (const auto& attr : subject) {
        const auto* bytes = reinterpret_cast<const unsigned char*>(attr.value.data());
        if (!X509_NAME_add_entry_by_txt(name.get(), attr.type.c_str(), MBSTRING_UTF8, bytes,
                                        static_cast<int>(attr.value.size()), -1, 0)) {
            ERR_clear_error();
            return {ErrorCode::invalid_argument, "subject attribute " + attr.type + "=" + attr.value + " is refused"};
        }
    }
    if (!X509_REQ_set_subject_name(req, name.get())) return openssl_failure("cannot set the subject");
    return {};
}

Result<std::vector<uint8_t>> digest_of(std::span<const uint8_t> data, const SchemeInfo& info) {
    const std::string digest_name(info.digest);
    ossl::Md md(EVP_MD_fetch(nullptr, digest_name.c_str(), nullptr));
    if (!md) return openssl_failure("digest " + digest_name + " is not available");
    std::vector<uint8_t> out(EVP_MAX_MD_SIZE);
    unsigned int len = 0;
    if (!EVP_Digest(data.data(), data.size(), out.data(), &len, md.get(), nullptr))
        return openssl_failure("cannot hash the request");
    out.resize(len);
    return out;
}

Status attach_signature(X509_REQ* req, ossl::Algor alg, const std::vector<uint8_t>& signature) {
    ossl::BitString bits(ASN1_BIT_STRING_new());
    if (!bits ||
        !ASN1_BIT_STRING_set(bits.get(), const_cast<uint8_t*>(signature.data()), static_cast<int>(signature.size())))
        return openssl_failure("out of memory");
    // A signature is a whole number of bytes: say "0 unused bits" explicitly instead of
    // letting the encoder trim trailing zero bits.
    bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    X509_REQ_set0_signature(req, bits.release());
    if (!X509_REQ_set1_signature_algo(req, alg.get())) return openssl_failure("cannot set the signature algorithm");
    return {};
}

Result<std::string> to_pem(X509_REQ* req) {
    ossl::Bio bio(BIO_new(BIO_s_mem()));
    if (!bio || !PEM_write_bio_X509_REQ(bio.get(), req)) return openssl_failure("cannot PEM-encode the request");
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(len));
}

}  // namespace

Result<Scheme> csr_scheme_for(std::span<const uint8_t> spki, std::span<const Scheme> supported) {
    auto key = parse_spki(spki);
    if (!key.ok()) return key.status();
    return checked_scheme(key->get(), supported);
}

Result<std::string> build_csr(const CsrRequest& request, std::span<const uint8_t> spki, const SignFn& sign) {
    auto key = parse_spki(spki);
    if (!key.ok()) return key.status();
    auto scheme = checked_scheme(key->get(), request.key_schemes);
    if (!scheme.ok()) return scheme.status();
    const SchemeInfo* info = scheme_info(scheme.value());
    auto alg = signature_algorithm(scheme.value());
    if (!alg.ok()) return alg.status();

    ossl::Req req(X509_REQ_new());
    if (!req) return openssl_failure("out of memory");
    if (!X509_REQ_set_version(req.get(), X509_REQ_VERSION_1)) return openssl_failure("cannot set the version");
    if (auto s = set_subject(req.get(), request.subject); !s.ok()) return s;
    if (!X509_REQ_set_pubkey(req.get(), key->get())) return openssl_failure("cannot set the public key");
    if (auto s = add_extensions(req.get(), request.sans); !s.ok()) return s;

    unsigned char* tbs_raw = nullptr;
    const int tbs_len = i2d_re_X509_REQ_tbs(req.get(), &tbs_raw);
    if (tbs_len <= 0) return openssl_failure("cannot encode the request");
    ossl::Bytes tbs(tbs_raw);

    auto digest = digest_of({tbs.get(), static_cast<size_t>(tbs_len)}, *info);
    if (!digest.ok()) return digest.status();
    auto signature = sign(scheme.value(), digest.value());
    if (!signature.ok()) return signature.status();
    if (auto s = attach_signature(req.get(), std::move(alg.value()), signature.value()); !s.ok()) return s;

    if (X509_REQ_verify(req.get(), key->get()) != 1) {
        ERR_clear_error();
        return Status{ErrorCode::device_error, "the signature made with " + std::string(info->name) +
                                                   " does not verify against the key's public key"};
    }
    return to_pem(req.get());
}

Result<CsrFacts> read_csr(std::string_view pem) {
    auto bad = [](const std::string& why) { return Status{ErrorCode::invalid_argument, "CSR: " + why}; };
    ossl::Bio mem(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!mem) return Status{ErrorCode::internal, "out of memory"};
    ossl::Req req(PEM_read_bio_X509_REQ(mem.get(), nullptr, nullptr, nullptr));
    if (!req) {
        ERR_clear_error();
        return bad("not a PEM certificate request");
    }
    ossl::PKey key(X509_REQ_get_pubkey(req.get()));
    if (!key || X509_REQ_verify(req.get(), key.get()) != 1) {
        ERR_clear_error();
        return bad("its signature does not verify");
    }
    CsrFacts facts;
    int len = i2d_X509_REQ(req.get(), nullptr);
    if (len <= 0) return bad("cannot encode as DER");
    facts.der.resize(static_cast<size_t>(len));
    unsigned char* out = facts.der.data();
    i2d_X509_REQ(req.get(), &out);

    X509_NAME* subject = X509_REQ_get_subject_name(req.get());
    if (int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); idx >= 0) {
        unsigned char* utf8 = nullptr;
        int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx)));
        if (n < 0) return bad("unreadable common name");
        ossl::Bytes owned(utf8);
        facts.common_name.assign(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
    }
    ossl::Extensions exts(X509_REQ_get_extensions(req.get()));
    if (exts) {
        ossl::GeneralNames names(
            static_cast<GENERAL_NAMES*>(X509V3_get_d2i(exts.get(), NID_subject_alt_name, nullptr, nullptr)));
        for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
            const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
            if (gn->type == GEN_DNS) {
                const ASN1_IA5STRING* s = gn->d.dNSName;
                facts.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                             static_cast<size_t>(ASN1_STRING_length(s)));
            } else if (gn->type == GEN_IPADD) {
                const ASN1_OCTET_STRING* s = gn->d.iPAddress;
                char text[INET6_ADDRSTRLEN] = {};
                int l = ASN1_STRING_length(s);
                if ((l == 4 && inet_ntop(AF_INET, ASN1_STRING_get0_data(s), text, sizeof text)) ||
                    (l == 16 && inet_ntop(AF_INET6, ASN1_STRING_get0_data(s), text, sizeof text)))
                    facts.ip_addresses.emplace_back(text);
            }
        }
    }
    ERR_clear_error();
    return facts;
}

}  // namespace keyward::pki
