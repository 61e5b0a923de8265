#include "pki/certificates.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/durations.hpp"

namespace keyward::pki {
namespace {

struct BioFree {
    void operator()(BIO* b) const noexcept { BIO_free_all(b); }
};
struct StoreFree {
    void operator()(X509_STORE* s) const noexcept { X509_STORE_free(s); }
};
struct StoreCtxFree {
    void operator()(X509_STORE_CTX* s) const noexcept { X509_STORE_CTX_free(s); }
};
struct StackFree {
    void operator()(STACK_OF(X509)* s) const noexcept { sk_X509_free(s); }  // does not own the certs
};
struct NamesFree {
    void operator()(GENERAL_NAMES* n) const noexcept { GENERAL_NAMES_free(n); }
};
struct EkuFree {
    void operator()(EXTENDED_KEY_USAGE* e) const noexcept { EXTENDED_KEY_USAGE_free(e); }
};

Status invalid(std::string what) { return {ErrorCode::invalid_argument, std::move(what)}; }

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

bool to_unix(const ASN1_TIME* t, int64_t& out) {
    std::tm tm{};
    if (!t || !ASN1_TIME_to_tm(t, &tm)) return false;
    out = static_cast<int64_t>(timegm(&tm));
    return true;
}

std::string ip_text(const unsigned char* bytes, int len) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (len == 4) inet_ntop(AF_INET, bytes, buf, sizeof buf);
    else if (len == 16) inet_ntop(AF_INET6, bytes, buf, sizeof buf);
    else return "?";
    return buf;
}

std::string asn1_text(const ASN1_STRING* s) {
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<size_t>(ASN1_STRING_length(s)));
}

std::string name_text(const X509_NAME* name) {
    char* text = X509_NAME_oneline(name, nullptr, 0);
    std::string out = text ? text : "";
    OPENSSL_free(text);
    return out;
}

std::vector<uint8_t> spki_of(X509* cert) {
    std::vector<uint8_t> out;
    X509_PUBKEY* pub = X509_get_X509_PUBKEY(cert);
    unsigned char* der = nullptr;
    int len = pub ? i2d_X509_PUBKEY(pub, &der) : -1;
    if (len > 0) out.assign(der, der + len);
    OPENSSL_free(der);
    return out;
}

std::string verify_error_text(int code) {
    switch (code) {
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
            return "it does not chain to the trust anchors (" + std::string(X509_verify_cert_error_string(code)) + ")";
        default: return X509_verify_cert_error_string(code);
    }
}

}  // namespace

Result<std::vector<X509Ptr>> parse_certificates(std::string_view pem) {
    std::vector<X509Ptr> out;
    std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) return Status{ErrorCode::internal, "out of memory"};
    for (;;) {
        X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
        if (!cert) break;
        out.emplace_back(cert);
    }
    const unsigned long err = ERR_peek_last_error();
    ERR_clear_error();
    if (out.empty()) return invalid("no PEM certificate in the answer");
    // The end of the input is fine; a damaged block after good ones is not.
    if (err != 0 && ERR_GET_REASON(err) != PEM_R_NO_START_LINE) return invalid("a PEM certificate block is damaged");
    return out;
}

Result<CertInfo> describe(X509* cert) {
    CertInfo info;
    const ASN1_INTEGER* serial = X509_get0_serialNumber(cert);
    if (BIGNUM* bn = ASN1_INTEGER_to_BN(serial, nullptr)) {
        char* hex = BN_bn2hex(bn);
        info.serial = hex ? hex : "";
        OPENSSL_free(hex);
        BN_free(bn);
    }
    if (!to_unix(X509_get0_notBefore(cert), info.not_before) || !to_unix(X509_get0_notAfter(cert), info.not_after))
        return invalid("the certificate's validity dates are unreadable");
    info.subject = name_text(X509_get_subject_name(cert));
    info.issuer = name_text(X509_get_issuer_name(cert));
    info.spki = spki_of(cert);
    std::unique_ptr<GENERAL_NAMES, NamesFree> names(
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
        const GENERAL_NAME* n = sk_GENERAL_NAME_value(names.get(), i);
        switch (n->type) {
            case GEN_DNS: info.sans.push_back("dns:" + lower(asn1_text(n->d.dNSName))); break;
            case GEN_EMAIL: info.sans.push_back("email:" + asn1_text(n->d.rfc822Name)); break;
            case GEN_URI: info.sans.push_back("uri:" + asn1_text(n->d.uniformResourceIdentifier)); break;
            case GEN_IPADD:
                info.sans.push_back("ip:" + ip_text(ASN1_STRING_get0_data(n->d.iPAddress), ASN1_STRING_length(n->d.iPAddress)));
                break;
            default: break;
        }
    }
    int crit = 0;
    std::unique_ptr<EXTENDED_KEY_USAGE, EkuFree> eku(
        static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(cert, NID_ext_key_usage, &crit, nullptr)));
    if (eku) {
        info.has_eku = true;
        for (int i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i)
            if (OBJ_obj2nid(sk_ASN1_OBJECT_value(eku.get(), i)) == NID_client_auth) info.client_auth = true;
    }
    ERR_clear_error();
    return info;
}

Result<CertInfo> describe_pem(std::string_view pem) {
    auto certs = parse_certificates(pem);
    if (!certs.ok()) return certs.status();
    return describe(certs->front().get());
}

std::string to_pem(X509* cert) {
    std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
    if (!bio || !PEM_write_bio_X509(bio.get(), cert)) return {};
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(len));
}

std::string san_text(const pki::SubjectAltName& san) {
    switch (san.kind) {
        case pki::SanKind::dns: return "dns:" + lower(san.value);
        case pki::SanKind::ip: return "ip:" + ip_text(san.ip.data(), static_cast<int>(san.ip.size()));
        case pki::SanKind::email: return "email:" + san.value;
        case pki::SanKind::uri: return "uri:" + san.value;
    }
    return {};
}

Result<IssuedChain> validate_issued(std::string_view cert_pem, std::string_view chain_pem, const Expectations& expect) {
    std::string all(cert_pem);
    if (!chain_pem.empty()) all += "\n" + std::string(chain_pem);
    auto parsed = parse_certificates(all);
    if (!parsed.ok()) return parsed.status();
    auto& certs = parsed.value();

    // The certificate for our key; everything else is chain.
    size_t leaf = certs.size();
    for (size_t i = 0; i < certs.size(); ++i)
        if (spki_of(certs[i].get()) == expect.spki) {
            leaf = i;
            break;
        }
    if (leaf == certs.size())
        return invalid("the issued certificate is for another key (its public key is not the device key's)");
    X509* cert = certs[leaf].get();
    auto info = describe(cert);
    if (!info.ok()) return info.status();

    if (info->not_after <= info->not_before)
        return invalid("the issued certificate's validity window is empty (notAfter " + format_time(info->not_after) +
                       " is not after notBefore " + format_time(info->not_before) + ")");
    if (info->not_after <= expect.now)
        return invalid("the issued certificate has already expired (notAfter " + format_time(info->not_after) + ")");
    if (info->not_before > expect.now + expect.max_clock_skew)
        return invalid("the issued certificate is not valid before " + format_time(info->not_before) +
                       " (more than " + format_duration(expect.max_clock_skew) + " from now)");
    if (expect.require_client_auth && !info->client_auth)
        return invalid(info->has_eku ? "the issued certificate's extended key usage lacks clientAuth"
                                     : "the issued certificate has no extended key usage (clientAuth required)");
    for (const auto& san : expect.sans) {
        const std::string want = san_text(san);
        if (std::find(info->sans.begin(), info->sans.end(), want) == info->sans.end())
            return invalid("the issued certificate lacks the requested subject alternative name " + want);
    }

    std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
    if (!store) return Status{ErrorCode::internal, "out of memory"};
    if (X509_STORE_load_file(store.get(), expect.trust_anchors.c_str()) != 1) {
        ERR_clear_error();
        return Status{ErrorCode::invalid_argument, "cannot read the trust anchors " + expect.trust_anchors};
    }
    std::unique_ptr<STACK_OF(X509), StackFree> untrusted(sk_X509_new_null());
    for (size_t i = 0; i < certs.size(); ++i)
        if (i != leaf) sk_X509_push(untrusted.get(), certs[i].get());
    std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
    if (!ctx || !X509_STORE_CTX_init(ctx.get(), store.get(), cert, untrusted.get()))
        return Status{ErrorCode::internal, "cannot set up certificate verification"};
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
    X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(expect.now));
    // An anchor may be an intermediate the administrator pinned.
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
    const int ok = X509_verify_cert(ctx.get());
    const int code = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    if (ok != 1) return invalid("the issued certificate fails verification: " + verify_error_text(code));

    // The chain to keep: what OpenSSL built, minus the leaf and the anchor itself.
    IssuedChain out;
    out.cert_pem = to_pem(cert);
    out.info = std::move(info.value());
    STACK_OF(X509)* built = X509_STORE_CTX_get0_chain(ctx.get());
    const int n = built ? sk_X509_num(built) : 0;
    for (int i = 1; i < n - 1; ++i) out.chain_pem += to_pem(sk_X509_value(built, i));
    // Keep intermediates the CA sent even when an anchor was one of them (partial chains).
    if (out.chain_pem.empty())
        for (size_t i = 0; i < certs.size(); ++i)
            if (i != leaf && X509_check_issued(certs[i].get(), cert) == X509_V_OK &&
                X509_check_issued(certs[i].get(), certs[i].get()) != X509_V_OK)
                out.chain_pem += to_pem(certs[i].get());
    return out;
}

}  // namespace keyward::pki
