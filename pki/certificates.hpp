// Reading certificates: PEM bundles, the facts the lifecycle schedules and shows (validity,
// serial, subject, SANs, key), and the validation every issued certificate must pass.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/x509.h>

#include "core/ossl.hpp"
#include "core/result.hpp"
#include "pki/csr.hpp"

namespace keyward::pki {

using X509Ptr = ossl::Cert;

struct CertInfo {
    std::string serial;      // hex, upper case
    int64_t not_before = 0;  // Unix time
    int64_t not_after = 0;
    std::string subject;  // "/CN=web.example"
    std::string issuer;
    std::vector<std::string> sans;  // "dns:web.example", "ip:192.0.2.1", "email:..", "uri:.."
    std::vector<uint8_t> spki;      // SubjectPublicKeyInfo DER
    bool has_eku = false;
    bool client_auth = false;  // the EKU extension lists clientAuth
};

// Every CERTIFICATE block of a PEM text, in order (other text around them is ignored).
Result<std::vector<X509Ptr>> parse_certificates(std::string_view pem);
// A CA's certificate download (application/pem-certificate-chain, RFC 8555 §9.1), strictly:
// only whitespace may sit between blocks, every block is one complete DER certificate, at
// most `max_certificates`. Each comes back re-encoded as clean PEM, first = end-entity.
// Errors start with "certificate chain: ".
Result<std::vector<std::string>> parse_pem_chain(std::string_view text, size_t max_certificates = 10);
Result<CertInfo> describe(X509* cert);
// The first certificate of `pem`.
Result<CertInfo> describe_pem(std::string_view pem);
std::string to_pem(X509* cert);

// "dns:web.example" in the form CertInfo::sans uses (lower-case DNS names, canonical IPs).
std::string san_text(const pki::SubjectAltName& san);

struct Expectations {
    std::string trust_anchors;  // PEM file
    std::vector<uint8_t> spki;  // the device key's public key
    bool require_client_auth = true;
    std::vector<pki::SubjectAltName> sans;  // each must be in the certificate
    int64_t now = 0;
    int64_t max_clock_skew = 300;  // not_before may be this far in the future
};

// A CA's answer, sorted out: the certificate for our key and the rest as the chain.
struct IssuedChain {
    std::string cert_pem;
    std::string chain_pem;  // intermediates, possibly empty
    CertInfo info;
};

// Finds the certificate for the device key among `cert_pem` + `chain_pem` and checks it:
// it chains to the trust anchors (OpenSSL X509_verify_cert at `now`), its public key is the
// device key, its validity window is sane, it carries the clientAuth EKU when required and
// every requested SAN. Errors say which check failed.
Result<IssuedChain> validate_issued(std::string_view cert_pem, std::string_view chain_pem, const Expectations& expect);

}  // namespace keyward::pki
