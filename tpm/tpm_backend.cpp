// Placeholder until the ESAPI backend lands: a configured TPM token reports clearly that
// this build cannot use it.
#include "tpm/tpm_backend.hpp"

namespace keyward::tpm {

Result<std::unique_ptr<KeyBackend>> open_backend(const TpmConfig&) {
    return Status{ErrorCode::device_unavailable, "this keywardd was built without TPM support"};
}

}  // namespace keyward::tpm
