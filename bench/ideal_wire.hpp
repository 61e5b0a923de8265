// The ideal socket agent's wire format (bench/ideal_agent.cpp and its client in
// bench/ideal_signer.cpp): the least a signing agent can send. A request is the 32-byte
// digest, nothing else; the answer is a 2-byte big-endian length and the signature (a
// length of 0 means the signature failed). No framing beyond that, no key names, no policy.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstddef>

namespace keyward::bench::ideal {

inline constexpr size_t kRequestSize = 32;
inline constexpr size_t kMaxSignature = 512;

// Blocking read/write of exactly n bytes; false on EOF or error.
inline bool read_full(int fd, unsigned char* p, size_t n) {
    while (n > 0) {
        ssize_t r = ::read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        p += r;
        n -= static_cast<size_t>(r);
    }
    return true;
}

inline bool write_full(int fd, const unsigned char* p, size_t n) {
    while (n > 0) {
        ssize_t r = ::write(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        p += r;
        n -= static_cast<size_t>(r);
    }
    return true;
}

}  // namespace keyward::bench::ideal
