#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

// "00 0a ff" (spaces ignored) -> bytes; the test vectors of docs/protocol.md are written so.
inline std::vector<uint8_t> from_hex(std::string_view text) {
    std::vector<uint8_t> out;
    int hi = -1;
    for (char c : text) {
        int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (v < 0) continue;
        if (hi < 0) {
            hi = v;
        } else {
            out.push_back(static_cast<uint8_t>(hi * 16 + v));
            hi = -1;
        }
    }
    return out;
}
