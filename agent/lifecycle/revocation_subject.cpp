#include "agent/lifecycle/revocation_subject.hpp"

#include <openssl/x509v3.h>

#include "core/durable_file.hpp"
#include "pki/certificates.hpp"

namespace keyward::lifecycle {

Result<RevocationSubject> RevocationSubject::parse(const std::string& cert_pem) {
    auto leaf = pki::parse_certificates(cert_pem);
    if (!leaf.ok() || leaf->empty())
        return Status{ErrorCode::invalid_argument, "the certificate in force does not parse"};
    RevocationSubject subject;
    subject.cert_ = std::move(leaf->front());
    return subject;
}

Status RevocationSubject::load_issuer(const std::string& chain_pem, const std::string& trust_anchors_file) {
    issuer_ = nullptr;
    chain_.clear();
    anchor_certs_.clear();
    if (auto chain = pki::parse_certificates(chain_pem); chain.ok())
        for (auto& c : chain.value()) chain_.push_back(std::move(c));
    auto anchors_text = files::read_file(trust_anchors_file);
    if (!anchors_text.ok()) return anchors_text.status();
    anchors_.reset(X509_STORE_new());
    if (!anchors_) return Status{ErrorCode::internal, "out of memory"};
    if (auto anchors = pki::parse_certificates(anchors_text.value()); anchors.ok())
        for (auto& a : anchors.value()) {
            X509_STORE_add_cert(anchors_.get(), a.get());
            anchor_certs_.push_back(std::move(a));
        }
    for (const auto* held : {&chain_, &anchor_certs_})
        for (const auto& c : *held)
            if (issuer_ == nullptr && X509_check_issued(c.get(), cert_.get()) == X509_V_OK) issuer_ = c.get();
    if (issuer_ == nullptr)
        return Status{ErrorCode::invalid_argument, "the issuer of the certificate in force is not at hand"};
    return Status::success();
}

ossl::CertView RevocationSubject::untrusted_chain() const {
    ossl::CertView view(sk_X509_new_null());
    for (size_t i = 0; i < chain_.size() && view; ++i)
        if (sk_X509_push(view.get(), chain_[i].get()) <= 0) view.reset();
    return view;
}

}  // namespace keyward::lifecycle
