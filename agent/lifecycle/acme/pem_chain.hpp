// The certificate download (application/pem-certificate-chain, RFC 8555 §9.1) and the CSR
// we send: strict parsing with clear errors, nothing trusted yet (validation is elsewhere).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace keyward::acme {

// Every CERTIFICATE block, re-encoded as clean PEM, first = end-entity. Only whitespace may
// sit between blocks; every block must be one complete DER certificate.
Result<std::vector<std::string>> parse_pem_chain(std::string_view text, size_t max_certificates = 10);

struct CsrFacts {
    std::vector<uint8_t> der;
    std::vector<std::string> dns_names;  // SAN dNSName entries, in order
    std::vector<std::string> ip_addresses;  // SAN iPAddress entries, textual
    std::string common_name;             // empty when absent
};

// A PEM CSR whose self-signature verifies.
Result<CsrFacts> read_csr(std::string_view pem);

}  // namespace keyward::acme
