// Files in and out of the CLI: "-" or an empty path means stdin/stdout.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace keyward::cli {

// Writes all bytes to `path` (created 0644 / truncated) or, when path is empty or "-", to stdout.
Status write_output(const std::string& path, std::span<const uint8_t> bytes, mode_t mode = 0644);
Status write_output(const std::string& path, std::string_view text, mode_t mode = 0644);

// The digest of a file (or stdin for "-") with the named OpenSSL digest ("SHA256"), read in chunks.
Result<std::vector<uint8_t>> digest_file(const std::string& path, std::string_view digest_name);

}  // namespace keyward::cli
