// Whether the certificate in force is still good, asked of its CA's OCSP responder (the URL
// in its Authority Information Access extension): a request over HTTP POST, the answer
// verified (signed by the issuer, or by a responder the issuer delegated to with the OCSP
// signing EKU, chaining to the trust anchors) before it is believed. See docs/renewal.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace keyward::lifecycle {

// What an OCSP responder or a CRL says about a certificate.
struct RevocationAnswer {
    enum class Kind {
        good,
        revoked,
        unknown,      // the responder does not know the certificate
        unavailable,  // no answer, or none that verifies: soft-fail, never "revoked"
        no_responder  // the certificate names no OCSP responder (no CRL distribution point)
    };
    Kind kind = Kind::unavailable;
    std::string reason;       // revoked: the CRLReason ("keyCompromise", ...), "unknown" when none was given
    int64_t next_update = 0;  // Unix time; 0 when the responder gave none
    std::string url;
    std::string source;   // "ocsp" or "crl"
    std::string message;  // for people
};

std::string_view revocation_answer_name(RevocationAnswer::Kind kind) noexcept;

// An answer of `source` ("ocsp" or "crl") with no reason and no next update (yet).
RevocationAnswer revocation_answer(std::string source, RevocationAnswer::Kind kind, std::string url,
                                   std::string message);

// Blocking (at most `timeout`). `chain_pem` and the certificates in `trust_anchors_file`
// are searched for the issuer; the anchors are what the answer must chain to.
RevocationAnswer check_ocsp(const std::string& cert_pem, const std::string& chain_pem,
                            const std::string& trust_anchors_file, std::chrono::seconds timeout);

// The CRL of the certificate's first http:// distribution point (DER or PEM, fetched with
// GET): signed by the certificate's issuer, which must chain to the anchors; current
// (nextUpdate not passed). Its nextUpdate is the answer's.
RevocationAnswer check_crl(const std::string& cert_pem, const std::string& chain_pem,
                           const std::string& trust_anchors_file, std::chrono::seconds timeout);

// HTTP for both: a GET (empty `body`) or a POST of `body` with `content_type`; at most 1 MiB.
bool revocation_http(const std::string& url, const std::string& body, const char* content_type,
                     std::chrono::seconds timeout, std::string& answer, std::string& why);

}  // namespace keyward::lifecycle
