// Finding key objects on a token and reading them back into a BackendKey.
// Every function returns the device's CK_RV; problems that are not the device's fault
// (no such key, a key type keyward does not handle) go to `problem` with CKR_OK returned.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <p11-kit/pkcs11.h>

#include "core/key_backend.hpp"
#include "core/result.hpp"

namespace keyward::pkcs11 {

// Up to `max` objects matching the template.
CK_RV find_objects(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s, CK_ATTRIBUTE* tmpl, CK_ULONG n,
                   std::vector<CK_OBJECT_HANDLE>& out, size_t max);

// Objects of `cls` labelled `label` (at most 2: more than one is reported by the caller).
CK_RV find_by_label(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const std::string& label,
                    std::vector<CK_OBJECT_HANDLE>& out);

// A variable-length attribute. CKR_ATTRIBUTE_TYPE_INVALID etc. are returned as is.
CK_RV get_bytes(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
                std::vector<uint8_t>& out);

// The key type of a private (or public) key object; nullopt in `type` if keyward does not
// handle it (other curves, RSA sizes, algorithms).
CK_RV read_key_type(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, std::optional<KeyType>& type);

// The whole description of a key: SPKI, attributes read back, schemes (`with_pss`: the token
// offers CKM_RSA_PKCS_PSS).
CK_RV read_key(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, const std::string& label, bool with_pss,
               BackendKey& out, Status& problem);

}  // namespace keyward::pkcs11
