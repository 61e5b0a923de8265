// The CRL half of revocation checking (declared in ocsp_check.hpp): the certificate's CRL
// distribution point, the CRL verified before it is believed.
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "agent/lifecycle/ocsp_check.hpp"
#include "agent/lifecycle/revocation_subject.hpp"
#include "core/ossl.hpp"

namespace keyward::lifecycle {
namespace {

using Kind = RevocationAnswer::Kind;
using Crl = ossl::Ptr<X509_CRL, X509_CRL_free>;
inline void free_points(STACK_OF(DIST_POINT) * s) { sk_DIST_POINT_pop_free(s, DIST_POINT_free); }
using Points = std::unique_ptr<STACK_OF(DIST_POINT), ossl::Free<free_points>>;
using Enumerated = ossl::Ptr<ASN1_ENUMERATED, ASN1_ENUMERATED_free>;

RevocationAnswer answer(Kind kind, std::string url, std::string message) {
    return revocation_answer("crl", kind, std::move(url), std::move(message));
}

// The first http:// URI of the distribution points (a full name, not relative).
std::string distribution_point(X509* cert) {
    Points points(
        static_cast<STACK_OF(DIST_POINT)*>(X509_get_ext_d2i(cert, NID_crl_distribution_points, nullptr, nullptr)));
    for (int i = 0; points && i < sk_DIST_POINT_num(points.get()); ++i) {
        const DIST_POINT* dp = sk_DIST_POINT_value(points.get(), i);
        if (dp->distpoint == nullptr || dp->distpoint->type != 0) continue;
        GENERAL_NAMES* names = dp->distpoint->name.fullname;
        for (int j = 0; j < sk_GENERAL_NAME_num(names); ++j) {
            const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, j);
            if (gn->type != GEN_URI) continue;
            const ASN1_IA5STRING* uri = gn->d.uniformResourceIdentifier;
            std::string text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                             static_cast<size_t>(ASN1_STRING_length(uri)));
            if (text.rfind("http://", 0) == 0) return text;
        }
    }
    return {};
}

Crl parse_crl(const std::string& body) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(body.data());
    Crl crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(body.size())));
    if (crl) return crl;
    ERR_clear_error();
    ossl::Bio bio(BIO_new_mem_buf(body.data(), static_cast<int>(body.size())));
    if (bio) crl.reset(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
    ERR_clear_error();
    return crl;
}

int64_t unix_time(const ASN1_TIME* t) {
    struct tm tm {};
    if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
    return static_cast<int64_t>(timegm(&tm));
}

}  // namespace

RevocationAnswer check_crl(const std::string& cert_pem, const std::string& chain_pem,
                           const std::string& trust_anchors_file, std::chrono::seconds timeout) {
    auto subject = RevocationSubject::parse(cert_pem);
    if (!subject.ok()) return answer(Kind::unavailable, "", subject.status().message);
    X509* cert = subject->cert();
    const std::string url = distribution_point(cert);
    if (url.empty()) return answer(Kind::no_responder, "", "the certificate names no http:// CRL distribution point");
    if (Status loaded = subject->load_issuer(chain_pem, trust_anchors_file); !loaded.ok())
        return answer(Kind::unavailable, url, loaded.message);
    X509* issuer = subject->issuer();
    ossl::CertView untrusted = subject->untrusted_chain();
    if (!untrusted) return answer(Kind::unavailable, url, "out of memory");
    // The CRL's signer is the certificate's issuer, itself vouched for by the anchors.
    X509_STORE_set_flags(subject->anchors(), X509_V_FLAG_PARTIAL_CHAIN);
    ossl::StoreCtx verify(X509_STORE_CTX_new());
    if (!verify || X509_STORE_CTX_init(verify.get(), subject->anchors(), issuer, untrusted.get()) != 1 ||
        X509_verify_cert(verify.get()) != 1)
        return answer(Kind::unavailable, url, "the issuer of the certificate in force does not chain to trust_anchors");

    std::string body, why;
    if (!revocation_http(url, "", "", timeout, body, why))
        return answer(Kind::unavailable, url, "CRL " + url + " unreachable: " + why);
    Crl crl = parse_crl(body);
    if (!crl) return answer(Kind::unavailable, url, "CRL " + url + " is no CRL");
    if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_issuer_name(cert)) != 0 ||
        X509_CRL_verify(crl.get(), X509_get0_pubkey(issuer)) != 1) {
        ERR_clear_error();
        return answer(Kind::unavailable, url, "CRL " + url + " is not signed by the certificate's issuer");
    }
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    const int64_t this_update = unix_time(X509_CRL_get0_lastUpdate(crl.get()));
    const int64_t next_update = unix_time(X509_CRL_get0_nextUpdate(crl.get()));
    if (this_update == 0 || this_update > now + 300 || (next_update != 0 && next_update < now - 300))
        return answer(Kind::unavailable, url, "CRL " + url + " is stale or from the future");

    RevocationAnswer out = answer(Kind::good, url, "not on CRL " + url);
    out.next_update = next_update;
    X509_REVOKED* entry = nullptr;
    if (X509_CRL_get0_by_cert(crl.get(), &entry, cert) == 1 && entry != nullptr) {
        out.kind = Kind::revoked;
        Enumerated code(
            static_cast<ASN1_ENUMERATED*>(X509_REVOKED_get_ext_d2i(entry, NID_crl_reason, nullptr, nullptr)));
        out.reason = code ? OCSP_crl_reason_str(ASN1_ENUMERATED_get(code.get())) : "unknown";
        out.message = "revoked (" + out.reason + ", CRL " + url + ")";
    }
    return out;
}

}  // namespace keyward::lifecycle
