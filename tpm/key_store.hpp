// The directory of wrapped key blobs: one NAME.pem (TSS2 PRIVATE KEY) per key, 0600,
// written atomically so a crash never leaves half a key.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace keyward::tpm {

class KeyStore {
public:
    // Creates the directory (0700, parents too) when missing.
    static Result<KeyStore> open(const std::string& dir);
    KeyStore() = default;  // an empty store, for Result<KeyStore>

    const std::string& dir() const noexcept { return dir_; }
    // Names whose files are in the directory, sorted.
    Result<std::vector<std::string>> names() const;
    Result<std::vector<uint8_t>> read(const std::string& name) const;
    // key_exists if the name is taken; never replaces a file.
    Status create(const std::string& name, std::string_view contents) const;
    Status remove(const std::string& name) const;

    static bool is_valid_name(std::string_view name) noexcept;

private:
    explicit KeyStore(std::string dir) : dir_(std::move(dir)) {}
    std::string path_of(const std::string& name) const { return dir_ + "/" + name + ".pem"; }
    std::string dir_;
};

}  // namespace keyward::tpm
