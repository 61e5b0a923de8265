// Which agent signature scheme a signing request maps to: (key kind, digest, padding,
// PSS salt length, MGF1 digest) -> Scheme, plus parsing of OpenSSL's string forms
// of the padding mode and the salt length. Pure; unit-tested without OpenSSL's core.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/schemes.hpp"
#include "core/result.hpp"

namespace keyward {

// The key kinds keyward handles (OpenSSL names: "EC", "RSA", "RSA-PSS").
enum class KeyKind { ec, rsa, rsa_pss };

enum class DigestId { none, sha256, sha384, sha512, other };
enum class Padding { pkcs1, pss };

// OpenSSL's special PSS salt lengths (RSA_PSS_SALTLEN_*), kept as the same numbers.
inline constexpr int kSaltDigest = -1;
inline constexpr int kSaltAuto = -2;
inline constexpr int kSaltMax = -3;

struct SignSettings {
    DigestId digest = DigestId::none;
    std::string digest_name;  // as the caller spelt it, for messages
    Padding padding = Padding::pkcs1;
    int saltlen = kSaltDigest;
    DigestId mgf1 = DigestId::none;  // none: same as the digest
};

size_t digest_size(DigestId d) noexcept;
// A digest inferred from the length of a prehashed input (ECDSA via pkeyutl).
DigestId digest_for_size(size_t n) noexcept;

// "pkcs1" / "pss" (OpenSSL's names) or the RSA_*_PADDING numbers 1 / 6.
Result<Padding> parse_padding(std::string_view name);
Result<Padding> padding_from_int(int mode);
int padding_to_int(Padding p) noexcept;
std::string_view padding_name(Padding p) noexcept;

// "digest", "max", "auto" or a decimal number (what OpenSSL's ctrl translation sends).
Result<int> parse_saltlen(std::string_view text);

// The agent signs PSS with salt = hash length only; every request must resolve to that.
// `ec_bits` is the curve size of an EC key (256, 384); unused for RSA.
//
// ECDSA is chosen by the curve, not by the digest: the agent signs the curve-sized value
// that fit_ecdsa_input() makes of any digest, so ECDSA-SHA256 with a P-384 key (what TLS
// 1.2 and `openssl req` ask for) works although the agent's P-384 scheme is
// ecdsa_secp384r1_sha384.
Result<Scheme> select_scheme(KeyKind kind, const SignSettings& s, int ec_bits = 0);

// ECDSA (FIPS 186-4 §6.4) signs e = the leftmost bitlen(n) bits of the hash, as an
// integer. For curves whose order is a whole number of bytes (P-256, P-384) the same e
// is given by the first `order_bytes` bytes of a longer digest, or by a shorter digest
// with zero bytes in front. The result always has order_bytes bytes.
std::vector<uint8_t> fit_ecdsa_input(std::span<const uint8_t> digest, size_t order_bytes);

}  // namespace keyward
