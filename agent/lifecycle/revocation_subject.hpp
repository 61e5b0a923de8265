// What the OCSP and the CRL check both start from: the certificate in force, its issuer (found
// among the chain and the trust anchors) and the anchors as a store that answers must chain to.
#pragma once

#include <string>
#include <vector>

#include "core/ossl.hpp"
#include "core/result.hpp"

namespace keyward::lifecycle {

class RevocationSubject {
public:
    // The certificate in force (the first of `cert_pem`); the error says it does not parse.
    static Result<RevocationSubject> parse(const std::string& cert_pem);

    // Reads the anchors into the store and finds the issuer, the chain's certificates searched
    // before the anchors'. An error names what is missing (the anchors file, the issuer).
    Status load_issuer(const std::string& chain_pem, const std::string& trust_anchors_file);

    X509* cert() const noexcept { return cert_.get(); }
    // Both valid after load_issuer succeeded; owned by this object.
    X509* issuer() const noexcept { return issuer_; }
    X509_STORE* anchors() const noexcept { return anchors_.get(); }
    // The chain's certificates (not the anchors) as untrusted intermediates; the stack does not
    // own them, so it must not outlive this object. Null when out of memory.
    ossl::CertView untrusted_chain() const;

private:
    ossl::Cert cert_;
    std::vector<ossl::Cert> chain_;
    std::vector<ossl::Cert> anchor_certs_;
    ossl::Store anchors_;
    X509* issuer_ = nullptr;
};

}  // namespace keyward::lifecycle
