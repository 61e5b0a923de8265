// Names of PKCS#11 return values, so error messages say CKR_PIN_INCORRECT instead of 0xa0.
#pragma once

#include <string>

#include <p11-kit/pkcs11.h>

namespace keyward::pkcs11 {

// "CKR_PIN_INCORRECT"; "CKR_0x000001a4" for codes the table does not know.
std::string ckr_name(CK_RV rv);

}  // namespace keyward::pkcs11
