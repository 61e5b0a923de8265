// libFuzzer target: certificate chains as CAs send them (PEM, strict and lenient readers) and
// the facts read from each certificate; CSRs read back from PEM.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pki/certificates.hpp"
#include "pki/csr.hpp"

using namespace keyward;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto strict = pki::parse_pem_chain(text);
    auto lenient = pki::parse_certificates(text);
    if (lenient.ok())
        for (const auto& cert : lenient.value()) (void)pki::describe(cert.get()).ok();
    // Whatever the strict reader accepts, the lenient one accepts too, with as many certificates.
    if (strict.ok() && (!lenient.ok() || lenient.value().size() != strict.value().size())) __builtin_trap();
    (void)pki::read_csr(text).ok();
    return 0;
}
