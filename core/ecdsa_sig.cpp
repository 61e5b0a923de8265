#include "core/ecdsa_sig.hpp"

#include <openssl/bn.h>
#include <openssl/ec.h>

#include "core/ossl.hpp"

namespace keyward {
namespace {

void append_der_length(std::vector<uint8_t>& out, size_t len) {
    if (len < 0x80) {
        out.push_back(static_cast<uint8_t>(len));
    } else if (len <= 0xff) {
        out.push_back(0x81);
        out.push_back(static_cast<uint8_t>(len));
    } else {
        out.push_back(0x82);
        out.push_back(static_cast<uint8_t>(len >> 8));
        out.push_back(static_cast<uint8_t>(len));
    }
}

// An unsigned big-endian integer as DER INTEGER contents: minimal, non-negative.
std::span<const uint8_t> minimal(std::span<const uint8_t> v) {
    while (v.size() > 1 && v[0] == 0) v = v.subspan(1);
    return v;
}

size_t integer_size(std::span<const uint8_t> v) { return v.size() + ((v[0] & 0x80) ? 1 : 0); }

size_t length_size(size_t len) { return len < 0x80 ? 1 : len <= 0xff ? 2 : 3; }

void append_integer(std::vector<uint8_t>& out, std::span<const uint8_t> v) {
    out.push_back(0x02);
    append_der_length(out, integer_size(v));
    if (v[0] & 0x80) out.push_back(0x00);
    out.insert(out.end(), v.begin(), v.end());
}

}  // namespace

bool ecdsa_rs_to_der(std::span<const uint8_t> r_in, std::span<const uint8_t> s_in, std::vector<uint8_t>& out) {
    if (r_in.empty() || s_in.empty()) return false;
    const auto r = minimal(r_in);
    const auto s = minimal(s_in);
    const size_t body =
        1 + length_size(integer_size(r)) + integer_size(r) + 1 + length_size(integer_size(s)) + integer_size(s);
    out.reserve(out.size() + 1 + length_size(body) + body);
    out.push_back(0x30);
    append_der_length(out, body);
    append_integer(out, r);
    append_integer(out, s);
    return true;
}

bool ecdsa_raw_to_der(std::span<const uint8_t> raw, std::vector<uint8_t>& out) {
    if (raw.empty() || raw.size() % 2 != 0) return false;
    return ecdsa_rs_to_der(raw.first(raw.size() / 2), raw.last(raw.size() / 2), out);
}

Result<std::vector<uint8_t>> ecdsa_der_to_raw(std::span<const uint8_t> der, size_t coordinate) {
    const unsigned char* p = der.data();
    ossl::EcdsaSig sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
    if (!sig || p != der.data() + der.size())
        return Status{ErrorCode::invalid_argument, "ECDSA signature is not a DER ECDSA-Sig-Value"};
    const BIGNUM* r = ECDSA_SIG_get0_r(sig.get());
    const BIGNUM* s = ECDSA_SIG_get0_s(sig.get());
    if (BN_is_negative(r) || BN_is_negative(s) || BN_num_bytes(r) > static_cast<int>(coordinate) ||
        BN_num_bytes(s) > static_cast<int>(coordinate))
        return Status{ErrorCode::invalid_argument, "ECDSA signature values do not fit the curve"};
    std::vector<uint8_t> raw(coordinate * 2);
    if (BN_bn2binpad(r, raw.data(), static_cast<int>(coordinate)) < 0 ||
        BN_bn2binpad(s, raw.data() + coordinate, static_cast<int>(coordinate)) < 0)
        return Status{ErrorCode::internal, "cannot encode the ECDSA signature"};
    return raw;
}

}  // namespace keyward
