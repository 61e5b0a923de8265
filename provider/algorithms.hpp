// The dispatch tables each operation file defines, collected by provider.cpp into the
// fixed algorithm lists returned from query_operation.
#pragma once

#include <openssl/core.h>

namespace keyward::provider {

extern const OSSL_DISPATCH keymgmt_ec_functions[];
extern const OSSL_DISPATCH keymgmt_rsa_functions[];
extern const OSSL_DISPATCH keymgmt_rsa_pss_functions[];

extern const OSSL_DISPATCH signature_ecdsa_functions[];
extern const OSSL_DISPATCH signature_rsa_functions[];

extern const OSSL_DISPATCH store_functions[];

extern const OSSL_DISPATCH decoder_pem_functions[];  // PEM "KEYWARD KEY" -> DER
extern const OSSL_DISPATCH decoder_ec_functions[];   // DER key reference -> EC key
extern const OSSL_DISPATCH decoder_rsa_functions[];
extern const OSSL_DISPATCH decoder_rsa_pss_functions[];

extern const OSSL_DISPATCH encoder_ec_spki_der_functions[];
extern const OSSL_DISPATCH encoder_ec_spki_pem_functions[];
extern const OSSL_DISPATCH encoder_rsa_spki_der_functions[];
extern const OSSL_DISPATCH encoder_rsa_spki_pem_functions[];
extern const OSSL_DISPATCH encoder_rsa_pss_spki_der_functions[];
extern const OSSL_DISPATCH encoder_rsa_pss_spki_pem_functions[];

}  // namespace keyward::provider
