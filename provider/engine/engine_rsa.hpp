// RSA with agent-held keys in the legacy ENGINE world.
//
// OpenSSL 3.0 routes a "foreign" legacy RSA key (one with its own RSA_METHOD) through the
// built-in RSA EVP_PKEY_METHOD, which turns PSS into RSA_padding_add_PKCS1_PSS_mgf1 +
// a raw private operation, something the agent rightly never offers. So RSA keys also
// get an engine EVP_PKEY_METHOD (the built-in one with `sign` replaced) attached to the
// key alone (EVP_PKEY_set1_engine): it sees digest, padding, salt length and MGF1 and maps
// them onto the agent's PKCS#1 / PSS schemes. The RSA_METHOD covers direct RSA_sign()
// callers, and refuses raw private operations.
#pragma once

#include <openssl/engine.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "provider/engine/engine_key.hpp"

namespace keyward::engine {

bool rsa_setup();  // methods and ex_data index; once
void rsa_teardown();

// Wraps the public key into an RSA whose signing goes to the agent. Takes `key`.
EVP_PKEY* rsa_make_pkey(ENGINE* e, RSA* pub, std::unique_ptr<EngineKey> key);

// ENGINE_set_pkey_meths callback.
int rsa_pkey_meths(ENGINE* e, EVP_PKEY_METHOD** pmeth, const int** nids, int nid);

}  // namespace keyward::engine
