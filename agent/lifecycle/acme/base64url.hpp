// base64url without padding (RFC 4648 §5), the encoding of every binary field in ACME/JOSE.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace keyward::acme {

std::string base64url_encode(std::span<const uint8_t> data);
std::string base64url_encode(std::string_view text);
// Strict: no padding, no whitespace, no characters outside the url-safe alphabet, no
// impossible lengths (len % 4 == 1). nullopt on any of those.
std::optional<std::vector<uint8_t>> base64url_decode(std::string_view text);

}  // namespace keyward::acme
