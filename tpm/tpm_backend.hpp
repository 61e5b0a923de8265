// The TPM 2.0 backend: keys created inside the TPM under the storage root key, kept as
// wrapped blobs (TSS2 PRIVATE KEY PEM) in a directory, signed through ESAPI.
// See docs/tpm.md.
#pragma once

#include <memory>
#include <string>

#include "core/key_backend.hpp"
#include "core/result.hpp"

namespace keyward::tpm {

struct TpmConfig {
    std::string tcti;       // e.g. "device:/dev/tpmrm0", "swtpm:path=/run/swtpm.sock"
    std::string key_dir;    // where the wrapped key blobs live (created 0700 if missing)
    std::string auth_file;  // optional: auth value for keys made on this token
};

Result<std::unique_ptr<KeyBackend>> open_backend(const TpmConfig& config);

}  // namespace keyward::tpm
