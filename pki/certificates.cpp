#include "pki/certificates.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/durations.hpp"

namespace keyward::pki {
namespace {

Status invalid(std::string what) { return {ErrorCode::invalid_argument, std::move(what)}; }

constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
constexpr std::string_view kEnd = "-----END CERTIFICATE-----";

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// The base64 body of a block; only base64 characters and line breaks are allowed.
bool decode_base64_lines(std::string_view body, std::vector<uint8_t>& out) {
    std::string clean;
    for (char c : body) {
        if (is_space(c)) continue;
        bool valid = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                     c == '/' || c == '=';
        if (!valid) return false;
        clean += c;
    }
    if (clean.empty() || clean.size() % 4 != 0) return false;
    out.resize(clean.size() / 4 * 3);
    int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(clean.data()),
                            static_cast<int>(clean.size()));
    if (n < 0) return false;
    size_t pad = 0;
    if (clean[clean.size() - 1] == '=') ++pad;
    if (clean[clean.size() - 2] == '=') ++pad;
    out.resize(static_cast<size_t>(n) - pad);
    return true;
}

// The certificate of the block whose BEGIN line is at `begin`; `next` is set past its END
// line. The block must hold exactly one DER certificate.
Result<X509Ptr> read_block(std::string_view text, size_t begin, size_t& next) {
    const size_t body = begin + kBegin.size();
    const size_t end = text.find(kEnd, body);
    if (end == std::string_view::npos) return invalid("is truncated (no END line)");
    next = end + kEnd.size();
    std::vector<uint8_t> der;
    if (!decode_base64_lines(text.substr(body, end - body), der)) return invalid("is not valid base64");
    const unsigned char* p = der.data();
    X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
    ERR_clear_error();
    if (!cert || p != der.data() + der.size()) return invalid("is not one DER certificate");
    return cert;
}

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
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       static_cast<size_t>(ASN1_STRING_length(s)));
}

std::string name_text(const X509_NAME* name) {
    ossl::Chars text(X509_NAME_oneline(name, nullptr, 0));
    return text ? text.get() : "";
}

std::vector<uint8_t> spki_of(X509* cert) {
    std::vector<uint8_t> out;
    X509_PUBKEY* pub = X509_get_X509_PUBKEY(cert);
    unsigned char* der = nullptr;
    int len = pub ? i2d_X509_PUBKEY(pub, &der) : -1;
    ossl::Bytes owned(der);
    if (len > 0) out.assign(der, der + len);
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
    for (size_t pos = 0;;) {
        const size_t begin = pem.find(kBegin, pos);
        if (begin == std::string_view::npos) break;
        Result<X509Ptr> cert = read_block(pem, begin, pos);
        if (!cert.ok()) {
            if (out.empty()) break;
            return invalid("a PEM certificate block is damaged");  // after good ones: not the end of the input
        }
        out.push_back(std::move(cert.value()));
    }
    if (out.empty()) return invalid("no PEM certificate in the answer");
    return out;
}

Result<std::vector<std::string>> parse_pem_chain(std::string_view text, size_t max_certificates) {
    auto bad = [](const std::string& why) { return invalid("certificate chain: " + why); };
    if (text.size() > 512 * 1024) return bad("larger than 512 KiB");
    std::vector<std::string> out;
    for (size_t pos = 0;;) {
        while (pos < text.size() && is_space(text[pos])) ++pos;
        if (pos == text.size()) break;
        if (text.substr(pos, kBegin.size()) != kBegin)
            return bad("unexpected text at byte " + std::to_string(pos) + " (only CERTIFICATE blocks are allowed)");
        Result<X509Ptr> cert = read_block(text, pos, pos);
        if (!cert.ok()) return bad("block " + std::to_string(out.size() + 1) + " " + cert.status().message);
        if (out.size() == max_certificates)
            return bad("more than " + std::to_string(max_certificates) + " certificates");
        std::string pem = to_pem(cert->get());
        if (pem.empty()) return Status{ErrorCode::internal, "cannot encode a certificate"};
        out.push_back(std::move(pem));
    }
    if (out.empty()) return bad("no certificate in the answer");
    return out;
}

Result<CertInfo> describe(X509* cert) {
    CertInfo info;
    const ASN1_INTEGER* serial = X509_get0_serialNumber(cert);
    if (ossl::Bn bn{ASN1_INTEGER_to_BN(serial, nullptr)}) {
        ossl::Chars hex(BN_bn2hex(bn.get()));
        info.serial = hex ? hex.get() : "";
    }
    if (!to_unix(X509_get0_notBefore(cert), info.not_before) || !to_unix(X509_get0_notAfter(cert), info.not_after))
        return invalid("the certificate's validity dates are unreadable");
    info.subject = name_text(X509_get_subject_name(cert));
    info.issuer = name_text(X509_get_issuer_name(cert));
    info.spki = spki_of(cert);
    ossl::GeneralNames names(
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
        const GENERAL_NAME* n = sk_GENERAL_NAME_value(names.get(), i);
        switch (n->type) {
            case GEN_DNS: info.sans.push_back("dns:" + lower(asn1_text(n->d.dNSName))); break;
            case GEN_EMAIL: info.sans.push_back("email:" + asn1_text(n->d.rfc822Name)); break;
            case GEN_URI: info.sans.push_back("uri:" + asn1_text(n->d.uniformResourceIdentifier)); break;
            case GEN_IPADD:
                info.sans.push_back("ip:" +
                                    ip_text(ASN1_STRING_get0_data(n->d.iPAddress), ASN1_STRING_length(n->d.iPAddress)));
                break;
            default: break;
        }
    }
    int crit = 0;
    ossl::Eku eku(static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(cert, NID_ext_key_usage, &crit, nullptr)));
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
    ossl::Bio bio(BIO_new(BIO_s_mem()));
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
        return invalid("the issued certificate is not valid before " + format_time(info->not_before) + " (more than " +
                       format_duration(expect.max_clock_skew) + " from now)");
    if (expect.require_client_auth && !info->client_auth)
        return invalid(info->has_eku ? "the issued certificate's extended key usage lacks clientAuth"
                                     : "the issued certificate has no extended key usage (clientAuth required)");
    for (const auto& san : expect.sans) {
        const std::string want = san_text(san);
        if (std::find(info->sans.begin(), info->sans.end(), want) == info->sans.end())
            return invalid("the issued certificate lacks the requested subject alternative name " + want);
    }

    ossl::Store store(X509_STORE_new());
    if (!store) return Status{ErrorCode::internal, "out of memory"};
    if (X509_STORE_load_file(store.get(), expect.trust_anchors.c_str()) != 1) {
        ERR_clear_error();
        return Status{ErrorCode::invalid_argument, "cannot read the trust anchors " + expect.trust_anchors};
    }
    ossl::CertView untrusted(sk_X509_new_null());
    for (size_t i = 0; i < certs.size(); ++i)
        if (i != leaf) sk_X509_push(untrusted.get(), certs[i].get());
    ossl::StoreCtx ctx(X509_STORE_CTX_new());
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
