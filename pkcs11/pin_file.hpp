// The user PIN, read from its file at each login and wiped right after; and the memory of a
// PIN the token rejected, so that the same PIN is never tried twice (cards lock).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "core/result.hpp"

namespace keyward::pkcs11 {

// A PIN in a fixed buffer that is locked in memory (never written to swap) while it lives
// and wiped on destruction. Core dumps are off for the whole agent (PR_SET_DUMPABLE 0).
class Pin {
public:
    Pin();
    ~Pin();
    Pin(const Pin&) = delete;
    Pin& operator=(const Pin&) = delete;

    const unsigned char* data() const noexcept { return buf_.data(); }
    size_t size() const noexcept { return size_; }

private:
    friend class PinFile;
    std::array<unsigned char, 256> buf_{};
    size_t size_ = 0;
};

class PinFile {
public:
    explicit PinFile(std::string path);

    const std::string& path() const noexcept { return path_; }
    // Reads the PIN (trailing CR/LF stripped) into `pin`.
    Status read(Pin& pin) const;
    // Remembers the file's present content and mtime as rejected by the token.
    void mark_rejected();
    // True while a PIN was rejected and the file has not changed since (content or mtime).
    bool rejected_and_unchanged() const;
    void clear_rejection() noexcept { rejected_ = false; }

private:
    struct Fingerprint {
        int64_t mtime_ns = -1;
        std::array<unsigned char, 32> mac{};  // HMAC under a per-process random key, never the PIN
        bool operator==(const Fingerprint&) const = default;
    };
    bool fingerprint(Fingerprint& out) const;

    std::string path_;
    std::array<unsigned char, 32> mac_key_{};
    bool rejected_ = false;
    Fingerprint rejected_print_;
};

}  // namespace keyward::pkcs11
