// libFuzzer target: what an ACME server (or anyone on the path to it) answers — directory,
// order, authorization, challenge and problem documents are parsed with clear errors.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/lifecycle/acme/acme_objects.hpp"

using namespace keyward;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    (void)acme::parse_directory(body).ok();
    (void)acme::parse_order(body).ok();
    (void)acme::parse_authorization(body).ok();
    (void)acme::parse_challenge(body).ok();
    (void)acme::parse_problem(body).describe();
    return 0;
}
