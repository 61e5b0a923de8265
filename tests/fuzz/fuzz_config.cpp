// libFuzzer target: keywardd's configuration file (TOML: agent settings, tokens, keys,
// identities and their issuers). Whatever the bytes, parsing ends in a configuration or a
// clear error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/config.hpp"

using namespace keyward;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = agent::parse_config(text, "fuzz.toml");
    if (!parsed.ok() && parsed.status().message.empty()) __builtin_trap();  // every refusal says why
    return 0;
}
