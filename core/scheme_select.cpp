#include "core/scheme_select.hpp"

#include <algorithm>
#include <charconv>

namespace keyward {

size_t digest_size(DigestId d) noexcept {
    switch (d) {
        case DigestId::sha256: return 32;
        case DigestId::sha384: return 48;
        case DigestId::sha512: return 64;
        default: return 0;
    }
}

DigestId digest_for_size(size_t n) noexcept {
    switch (n) {
        case 32: return DigestId::sha256;
        case 48: return DigestId::sha384;
        case 64: return DigestId::sha512;
        default: return DigestId::none;
    }
}

Result<Padding> parse_padding(std::string_view name) {
    if (name == "pkcs1") return Padding::pkcs1;
    if (name == "pss") return Padding::pss;
    return Status{ErrorCode::unsupported_scheme,
                  "keyward: RSA padding \"" + std::string(name) + "\" is not supported (only pkcs1 and pss)"};
}

Result<Padding> padding_from_int(int mode) {
    if (mode == 1) return Padding::pkcs1;  // RSA_PKCS1_PADDING
    if (mode == 6) return Padding::pss;    // RSA_PKCS1_PSS_PADDING
    return Status{ErrorCode::unsupported_scheme,
                  "keyward: RSA padding mode " + std::to_string(mode) + " is not supported (only PKCS#1 v1.5 and PSS)"};
}

int padding_to_int(Padding p) noexcept { return p == Padding::pss ? 6 : 1; }

std::string_view padding_name(Padding p) noexcept { return p == Padding::pss ? "pss" : "pkcs1"; }

Result<int> parse_saltlen(std::string_view text) {
    if (text == "digest") return kSaltDigest;
    if (text == "auto") return kSaltAuto;
    if (text == "max") return kSaltMax;
    int v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty() || v < kSaltMax)
        return Status{ErrorCode::invalid_argument, "keyward: invalid PSS salt length \"" + std::string(text) + "\""};
    return v;
}

namespace {

Status unsupported(std::string msg) { return {ErrorCode::unsupported_scheme, "keyward: " + std::move(msg)}; }

std::string digest_label(const SignSettings& s) {
    if (!s.digest_name.empty()) return s.digest_name;
    switch (s.digest) {
        case DigestId::sha256: return "SHA256";
        case DigestId::sha384: return "SHA384";
        case DigestId::sha512: return "SHA512";
        case DigestId::none: return "no digest";
        default: return "this digest";
    }
}

}  // namespace

std::vector<uint8_t> fit_ecdsa_input(std::span<const uint8_t> digest, size_t order_bytes) {
    std::vector<uint8_t> out(order_bytes, 0);
    if (digest.size() >= order_bytes) {
        std::copy(digest.begin(), digest.begin() + static_cast<std::ptrdiff_t>(order_bytes), out.begin());
    } else {
        std::copy(digest.begin(), digest.end(), out.begin() + static_cast<std::ptrdiff_t>(order_bytes - digest.size()));
    }
    return out;
}

Result<Scheme> select_scheme(KeyKind kind, const SignSettings& s, int ec_bits) {
    if (kind == KeyKind::ec) {
        if (auto scheme = ecdsa_scheme_for(ec_bits)) return *scheme;
        return unsupported("ECDSA on a " + std::to_string(ec_bits) + "-bit curve is not supported");
    }
    if (s.digest != DigestId::sha256 && s.digest != DigestId::sha384 && s.digest != DigestId::sha512)
        return unsupported("RSA with " + digest_label(s) + " is not supported (SHA256, SHA384 or SHA512)");

    Padding padding = kind == KeyKind::rsa_pss ? Padding::pss : s.padding;
    if (kind == KeyKind::rsa_pss && s.padding != Padding::pss)
        return unsupported("an RSA-PSS key signs with PSS padding only");
    if (padding == Padding::pkcs1) return *rsa_scheme_for(SchemeFamily::rsa_pkcs1, digest_size(s.digest));
    const int hlen = static_cast<int>(digest_size(s.digest));
    // "auto" and "max" let the signer choose; the agent's choice is the hash length,
    // which every verifier accepts for "auto" and TLS 1.3 demands.
    if (s.saltlen != kSaltDigest && s.saltlen != kSaltAuto && s.saltlen != kSaltMax && s.saltlen != hlen)
        return unsupported("PSS salt length " + std::to_string(s.saltlen) +
                           " is not supported: the agent signs with salt length = hash length (" +
                           std::to_string(hlen) + ")");
    if (s.mgf1 != DigestId::none && s.mgf1 != s.digest)
        return unsupported("PSS with an MGF1 digest other than the signature digest is not supported");
    return *rsa_scheme_for(SchemeFamily::rsa_pss, digest_size(s.digest));
}

}  // namespace keyward
