// Which agent signature scheme a signing request maps to: (key kind, digest, padding,
// PSS salt length, MGF1 digest) -> ipc::Scheme, plus parsing of OpenSSL's string forms
// of the padding mode and the salt length. Pure; unit-tested without OpenSSL's core.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "ipc/protocol.hpp"
#include "ipc/result.hpp"

namespace keyward::provider {

enum class KeyKind;

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
Result<ipc::Scheme> select_scheme(KeyKind kind, const SignSettings& s);

}  // namespace keyward::provider
