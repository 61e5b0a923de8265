// Hex text ⇄ bytes, for digests on the command line and fingerprints in the output.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace keyward {

std::string to_hex(std::span<const uint8_t> bytes);  // lower case, no separators
// Upper- or lower-case digits, an even number of them, nothing else; nullopt otherwise.
std::optional<std::vector<uint8_t>> from_hex(std::string_view text);

}  // namespace keyward
