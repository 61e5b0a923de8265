// PKCS#10 certificate requests signed by a key that never leaves its device.
//
// The request is assembled with OpenSSL from the key's public half; only the digest of the
// to-be-signed part goes to the signer (a callback: the agent over its socket for the CLI,
// the backend directly inside keywardd). The result is checked against the public key
// before it is returned, so a wrong signature is an error here rather than at the CA.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/schemes.hpp"
#include "core/result.hpp"

namespace keyward::pki {

// One RDN of the subject, e.g. {"CN", "client"}. The type is any name or OID OpenSSL knows.
struct SubjectAttribute {
    std::string type;
    std::string value;
    bool operator==(const SubjectAttribute&) const = default;
};

// "/CN=client/O=Example\/Org" → [{CN, client}, {O, Example/Org}]. A backslash takes the next
// character literally (so "\/" and "\\"); '+' and '=' inside values are ordinary characters.
// Unknown types, empty values and values OpenSSL refuses (e.g. C=USA) are errors.
Result<std::vector<SubjectAttribute>> parse_subject(std::string_view text);

enum class SanKind { dns, ip, email, uri };

struct SubjectAltName {
    SanKind kind = SanKind::dns;
    std::string value;        // as given (for ip: the textual address)
    std::vector<uint8_t> ip;  // for ip: 4 or 16 bytes, network order
    bool operator==(const SubjectAltName&) const = default;
};

// "dns:host.example", "ip:192.0.2.1", "ip:2001:db8::1", "email:ops@example.org",
// "uri:spiffe://example.org/x". The kind is case-insensitive.
Result<SubjectAltName> parse_san(std::string_view text);

struct CsrRequest {
    std::vector<SubjectAttribute> subject;
    std::vector<SubjectAltName> sans;
    // What the key can sign with on its device; empty means "don't check".
    std::vector<Scheme> key_schemes;
};

// Signs a digest made with the scheme's hash. Returns the raw signature: DER for ECDSA,
// the PKCS#1 v1.5 block for RSA.
using SignFn = std::function<Result<std::vector<uint8_t>>(Scheme scheme, std::span<const uint8_t> digest)>;

// The scheme a CSR for this public key is signed with: the curve's own ECDSA scheme, or
// rsa_pkcs1_sha256 for RSA. Fails if `supported` is non-empty and lacks it.
Result<Scheme> csr_scheme_for(std::span<const uint8_t> spki, std::span<const Scheme> supported);

// The request as PEM ("-----BEGIN CERTIFICATE REQUEST-----"): version 1, the subject, the
// public key from `spki`, an extensionRequest with extendedKeyUsage=clientAuth and (when
// SANs are given) subjectAltName, signed through `sign`. Errors from `sign` come back as
// they were returned.
Result<std::string> build_csr(const CsrRequest& request, std::span<const uint8_t> spki, const SignFn& sign);

// What an issuer needs from a CSR it is handed.
struct CsrFacts {
    std::vector<uint8_t> der;
    std::vector<std::string> dns_names;     // SAN dNSName entries, in order
    std::vector<std::string> ip_addresses;  // SAN iPAddress entries, textual
    std::string common_name;                // empty when absent
};

// A PEM CSR whose self-signature verifies. Errors start with "CSR: ".
Result<CsrFacts> read_csr(std::string_view pem);

}  // namespace keyward::pki
