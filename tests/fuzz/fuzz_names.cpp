// libFuzzer target: the subject and SAN syntax of CSRs ("/CN=web/O=Example", "dns:web.example",
// "ip:192.0.2.1"), which comes from configuration files and the command line.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pki/csr.hpp"

using namespace keyward;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    (void)pki::parse_subject(text).ok();
    (void)pki::parse_san(text).ok();
    return 0;
}
