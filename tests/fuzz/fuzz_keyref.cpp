// libFuzzer target: key-reference files (PEM and DER), which the provider decodes inside
// other people's processes. Whatever decodes re-encodes to something that decodes the same.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "ipc/keyref.hpp"

using namespace keyward;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto der = decode_key_reference_der(std::span<const uint8_t>(data, size));
    if (der.ok()) {
        auto again = decode_key_reference_der(encode_key_reference_der(der.value()));
        if (!again.ok()) __builtin_trap();
    }
    auto pem = decode_key_reference_pem(std::string_view(reinterpret_cast<const char*>(data), size));
    (void)pem.ok();
    return 0;
}
