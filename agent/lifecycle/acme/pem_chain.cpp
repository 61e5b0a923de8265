#include "agent/lifecycle/acme/pem_chain.hpp"

#include <arpa/inet.h>

#include <memory>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace keyward::acme {

namespace {

struct X509Free { void operator()(X509* p) const { X509_free(p); } };
struct ReqFree { void operator()(X509_REQ* p) const { X509_REQ_free(p); } };
struct BioFree { void operator()(BIO* p) const { BIO_free(p); } };
struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct ExtsFree { void operator()(STACK_OF(X509_EXTENSION)* p) const { sk_X509_EXTENSION_pop_free(p, X509_EXTENSION_free); } };
struct NamesFree { void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); } };

constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
constexpr std::string_view kEnd = "-----END CERTIFICATE-----";

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::vector<uint8_t> decode_base64_lines(std::string_view body, bool& ok) {
    std::string clean;
    for (char c : body) {
        if (is_space(c)) continue;
        bool valid = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                     c == '/' || c == '=';
        if (!valid) { ok = false; return {}; }
        clean += c;
    }
    if (clean.empty() || clean.size() % 4 != 0) { ok = false; return {}; }
    std::vector<uint8_t> out(clean.size() / 4 * 3);
    int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(clean.data()), static_cast<int>(clean.size()));
    if (n < 0) { ok = false; return {}; }
    size_t pad = 0;
    if (clean.size() >= 1 && clean[clean.size() - 1] == '=') ++pad;
    if (clean.size() >= 2 && clean[clean.size() - 2] == '=') ++pad;
    out.resize(static_cast<size_t>(n) - pad);
    ok = true;
    return out;
}

}  // namespace

Result<std::vector<std::string>> parse_pem_chain(std::string_view text, size_t max_certificates) {
    auto bad = [](const std::string& why) { return Status{ErrorCode::invalid_argument, "certificate chain: " + why}; };
    if (text.size() > 512 * 1024) return bad("larger than 512 KiB");
    std::vector<std::string> out;
    size_t pos = 0;
    for (;;) {
        while (pos < text.size() && is_space(text[pos])) ++pos;
        if (pos == text.size()) break;
        if (text.substr(pos, kBegin.size()) != kBegin)
            return bad("unexpected text at byte " + std::to_string(pos) + " (only CERTIFICATE blocks are allowed)");
        size_t body = pos + kBegin.size();
        size_t end = text.find(kEnd, body);
        if (end == std::string_view::npos) return bad("block " + std::to_string(out.size() + 1) + " is truncated (no END line)");
        bool ok = false;
        std::vector<uint8_t> der = decode_base64_lines(text.substr(body, end - body), ok);
        if (!ok) return bad("block " + std::to_string(out.size() + 1) + " is not valid base64");
        const unsigned char* p = der.data();
        std::unique_ptr<X509, X509Free> cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
        if (!cert || p != der.data() + der.size())
            return bad("block " + std::to_string(out.size() + 1) + " is not one DER certificate");
        if (out.size() == max_certificates) return bad("more than " + std::to_string(max_certificates) + " certificates");
        std::unique_ptr<BIO, BioFree> mem(BIO_new(BIO_s_mem()));
        if (!mem || PEM_write_bio_X509(mem.get(), cert.get()) != 1) return Status{ErrorCode::internal, "cannot encode a certificate"};
        char* data = nullptr;
        long len = BIO_get_mem_data(mem.get(), &data);
        out.emplace_back(data, static_cast<size_t>(len));
        pos = end + kEnd.size();
    }
    if (out.empty()) return bad("no certificate in the answer");
    return out;
}

Result<CsrFacts> read_csr(std::string_view pem) {
    auto bad = [](const std::string& why) { return Status{ErrorCode::invalid_argument, "CSR: " + why}; };
    std::unique_ptr<BIO, BioFree> mem(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!mem) return Status{ErrorCode::internal, "out of memory"};
    std::unique_ptr<X509_REQ, ReqFree> req(PEM_read_bio_X509_REQ(mem.get(), nullptr, nullptr, nullptr));
    if (!req) return bad("not a PEM certificate request");
    std::unique_ptr<EVP_PKEY, PkeyFree> key(X509_REQ_get_pubkey(req.get()));
    if (!key || X509_REQ_verify(req.get(), key.get()) != 1) return bad("its signature does not verify");
    CsrFacts facts;
    int len = i2d_X509_REQ(req.get(), nullptr);
    if (len <= 0) return bad("cannot encode as DER");
    facts.der.resize(static_cast<size_t>(len));
    unsigned char* out = facts.der.data();
    i2d_X509_REQ(req.get(), &out);

    X509_NAME* subject = X509_REQ_get_subject_name(req.get());
    int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (idx >= 0) {
        ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
        unsigned char* utf8 = nullptr;
        int n = ASN1_STRING_to_UTF8(&utf8, cn);
        if (n < 0) return bad("unreadable common name");
        facts.common_name.assign(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
        OPENSSL_free(utf8);
    }
    std::unique_ptr<STACK_OF(X509_EXTENSION), ExtsFree> exts(X509_REQ_get_extensions(req.get()));
    if (exts) {
        std::unique_ptr<GENERAL_NAMES, NamesFree> names(
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
    return facts;
}

}  // namespace keyward::acme
