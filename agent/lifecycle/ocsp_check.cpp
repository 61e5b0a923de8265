#include "agent/lifecycle/ocsp_check.hpp"

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "agent/lifecycle/revocation_subject.hpp"
#include "core/ossl.hpp"

namespace keyward::lifecycle {
namespace {

using Kind = RevocationAnswer::Kind;
using Request = ossl::Ptr<OCSP_REQUEST, OCSP_REQUEST_free>;
using Response = ossl::Ptr<OCSP_RESPONSE, OCSP_RESPONSE_free>;
using Basic = ossl::Ptr<OCSP_BASICRESP, OCSP_BASICRESP_free>;
using CertId = ossl::Ptr<OCSP_CERTID, OCSP_CERTID_free>;
inline void free_strings(STACK_OF(OPENSSL_STRING) * s) { X509_email_free(s); }
using Urls = std::unique_ptr<STACK_OF(OPENSSL_STRING), ossl::Free<free_strings>>;
using Curl = std::unique_ptr<CURL, ossl::Free<curl_easy_cleanup>>;
using Headers = std::unique_ptr<curl_slist, ossl::Free<curl_slist_free_all>>;

constexpr size_t kMaxResponse = 1 << 20;  // CRLs can be large; OCSP answers are small

RevocationAnswer answer(Kind kind, std::string url, std::string message) {
    return revocation_answer("ocsp", kind, std::move(url), std::move(message));
}

std::string openssl_errors() {
    std::string out;
    unsigned long code;
    while ((code = ERR_get_error()) != 0) {
        const char* r = ERR_reason_error_string(code);
        if (r != nullptr && out.find(r) == std::string::npos) out += (out.empty() ? "" : "; ") + std::string(r);
    }
    return out.empty() ? "unknown error" : out;
}

int64_t unix_time(const ASN1_GENERALIZEDTIME* t) {
    struct tm tm {};
    if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
    return static_cast<int64_t>(timegm(&tm));
}

size_t collect(char* data, size_t size, size_t n, void* user) {
    auto* body = static_cast<std::string*>(user);
    if (body->size() + size * n > kMaxResponse) return 0;  // a responder has no business sending more
    body->append(data, size * n);
    return size * n;
}

}  // namespace

bool revocation_http(const std::string& url, const std::string& request, const char* content_type,
                     std::chrono::seconds timeout, std::string& body, std::string& why) {
    Curl curl(curl_easy_init());
    Headers headers(curl_slist_append(nullptr, (std::string("Content-Type: ") + content_type).c_str()));
    if (!curl || !headers) return why = "cannot start an HTTP request", false;
    char error[CURL_ERROR_SIZE] = "";
    long status = 0;
    CURL* c = curl.get();
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (!request.empty()) {
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.data());
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.size()));
    }
    curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(timeout.count()));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
    const CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) return why = error[0] != '\0' ? error : curl_easy_strerror(rc), false;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) return why = "HTTP " + std::to_string(status), false;
    return true;
}

RevocationAnswer revocation_answer(std::string source, RevocationAnswer::Kind kind, std::string url,
                                   std::string message) {
    RevocationAnswer a;
    a.source = std::move(source);
    a.kind = kind;
    a.url = std::move(url);
    a.message = std::move(message);
    return a;
}

std::string_view revocation_answer_name(RevocationAnswer::Kind kind) noexcept {
    switch (kind) {
        case Kind::good: return "good";
        case Kind::revoked: return "revoked";
        case Kind::unknown: return "unknown";
        case Kind::unavailable: return "unavailable";
        case Kind::no_responder: return "no responder";
    }
    return "unavailable";
}

RevocationAnswer check_ocsp(const std::string& cert_pem, const std::string& chain_pem,
                            const std::string& trust_anchors_file, std::chrono::seconds timeout) {
    ERR_clear_error();
    auto subject = RevocationSubject::parse(cert_pem);
    if (!subject.ok()) return answer(Kind::unavailable, "", subject.status().message);
    X509* cert = subject->cert();
    Urls urls(X509_get1_ocsp(cert));
    if (!urls || sk_OPENSSL_STRING_num(urls.get()) == 0)
        return answer(Kind::no_responder, "", "the certificate names no OCSP responder");
    const std::string url = sk_OPENSSL_STRING_value(urls.get(), 0);
    if (Status loaded = subject->load_issuer(chain_pem, trust_anchors_file); !loaded.ok())
        return answer(Kind::unavailable, url, loaded.message);
    X509* issuer = subject->issuer();

    Request req(OCSP_REQUEST_new());
    CertId id(OCSP_cert_to_id(nullptr, cert, issuer));
    if (!req || !id) return answer(Kind::unavailable, url, "cannot make an OCSP request: " + openssl_errors());
    OCSP_CERTID* id_copy = OCSP_CERTID_dup(id.get());
    if (id_copy == nullptr || OCSP_request_add0_id(req.get(), id_copy) == nullptr) {
        OCSP_CERTID_free(id_copy);
        return answer(Kind::unavailable, url, "cannot make an OCSP request: " + openssl_errors());
    }
    OCSP_request_add1_nonce(req.get(), nullptr, -1);
    unsigned char* der = nullptr;
    const int der_len = i2d_OCSP_REQUEST(req.get(), &der);
    if (der_len <= 0) return answer(Kind::unavailable, url, "cannot encode the OCSP request");
    ossl::Bytes der_owner(der);
    const std::string request_der(reinterpret_cast<const char*>(der), static_cast<size_t>(der_len));

    std::string body, why;  // POST (RFC 6960 appendix A.1)
    if (!revocation_http(url, request_der, "application/ocsp-request", timeout, body, why))
        return answer(Kind::unavailable, url, "OCSP responder " + url + " unreachable: " + why);
    const unsigned char* p = reinterpret_cast<const unsigned char*>(body.data());
    Response resp(d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(body.size())));
    if (!resp) return answer(Kind::unavailable, url, "OCSP responder " + url + " sent no OCSP response");
    const int rs = OCSP_response_status(resp.get());
    if (rs != OCSP_RESPONSE_STATUS_SUCCESSFUL)
        return answer(Kind::unavailable, url, "OCSP responder " + url + " answered " + OCSP_response_status_str(rs));
    Basic basic(OCSP_response_get1_basic(resp.get()));
    if (!basic) return answer(Kind::unavailable, url, "OCSP responder " + url + " sent no basic response");
    if (OCSP_check_nonce(req.get(), basic.get()) == 0)  // 2 (no nonce in the answer) is allowed: cached answers
        return answer(Kind::unavailable, url, "OCSP responder " + url + " answered another request (nonce)");
    // The signer must chain to the anchors and be the issuer or delegated by it (OCSP signing EKU).
    ossl::CertView untrusted = subject->untrusted_chain();
    if (untrusted) sk_X509_push(untrusted.get(), issuer);
    if (OCSP_basic_verify(basic.get(), untrusted.get(), subject->anchors(), 0) != 1)
        return answer(Kind::unavailable, url,
                      "the answer of OCSP responder " + url + " does not verify: " + openssl_errors());
    int status = -1, reason = -1;
    ASN1_GENERALIZEDTIME *revoked_at = nullptr, *this_update = nullptr, *next_update = nullptr;
    if (OCSP_resp_find_status(basic.get(), id.get(), &status, &reason, &revoked_at, &this_update, &next_update) != 1)
        return answer(Kind::unavailable, url, "OCSP responder " + url + " did not answer for this certificate");
    if (OCSP_check_validity(this_update, next_update, 300, -1) != 1)
        return answer(Kind::unavailable, url, "the answer of OCSP responder " + url + " is stale or from the future");
    RevocationAnswer out = answer(Kind::unknown, url, "unknown to OCSP responder " + url);
    out.next_update = unix_time(next_update);
    if (status == V_OCSP_CERTSTATUS_GOOD) {
        out.kind = Kind::good;
        out.message = "good (OCSP " + url + ")";
    } else if (status == V_OCSP_CERTSTATUS_REVOKED) {
        out.kind = Kind::revoked;
        out.reason = reason >= 0 ? OCSP_crl_reason_str(reason) : "unknown";  // RFC 5280 names
        out.message = "revoked (" + out.reason + ", OCSP " + url + ")";
    }
    return out;
}

}  // namespace keyward::lifecycle
