// The CMP issuer (RFC 4210, lightweight profile RFC 9483) on OpenSSL's own OSSL_CMP client.
// First certificate: an initial request (ir) protected by a shared secret (PBM) or signed
// with a bootstrap certificate's device key. Renewal: a key update request (kur) signed
// by the key and certificate in force, with proof of possession by the new key. An
// expired certificate cannot authenticate anything, so it is replaced through an ir with
// the initial credential. A CA that asks us to wait (checkAfter) is polled in the same
// call for short waits and through the lifecycle's pending state for long ones.
#pragma once

#include <memory>
#include <string>

#include <toml++/toml.h>

#include "agent/lifecycle/issuer.hpp"
#include "core/result.hpp"

namespace keyward::lifecycle {

Status check_cmp_issuer(const toml::table& issuer, const std::string& source, const std::string& prefix);

// Builds the issuer from a table check_cmp_issuer accepted.
std::unique_ptr<Issuer> make_cmp_issuer(const toml::table& issuer);

}  // namespace keyward::lifecycle
