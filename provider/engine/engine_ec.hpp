// ECDSA with agent-held keys in the legacy ENGINE world: an EC_KEY_METHOD whose sign and
// sign_sig ask the agent (the built-in EC EVP_PKEY_METHOD reaches them through
// ECDSA_sign); verification stays OpenSSL's.
#pragma once

#include <openssl/ec.h>
#include <openssl/engine.h>
#include <openssl/evp.h>

#include "provider/engine/engine_key.hpp"

namespace keyward::engine {

bool ec_setup();
void ec_teardown();

// Wraps the public key into an EC_KEY whose signing goes to the agent. Takes `key`.
EVP_PKEY* ec_make_pkey(EC_KEY* pub, std::unique_ptr<EngineKey> key);

}  // namespace keyward::engine
