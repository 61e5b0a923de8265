// Byte formats the backend produces itself: DER ECDSA signatures and PKCS#1 DigestInfo.
#include <catch2/catch.hpp>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>

#include "pkcs11/encoding.hpp"

using namespace keyward::pkcs11;

namespace {

// Parses with OpenSSL (strict DER) and returns r and s as bytes of the given width.
bool parse_sig(const std::vector<uint8_t>& der, size_t width, std::vector<uint8_t>& raw) {
    const unsigned char* p = der.data();
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
    if (!sig || p != der.data() + der.size()) {
        ECDSA_SIG_free(sig);
        return false;
    }
    raw.assign(2 * width, 0);
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw.data(), static_cast<int>(width));
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw.data() + width, static_cast<int>(width));
    // Re-encoding must give the same bytes: ours is canonical DER.
    unsigned char* re = nullptr;
    const int len = i2d_ECDSA_SIG(sig, &re);
    const bool same = len == static_cast<int>(der.size()) && std::equal(der.begin(), der.end(), re);
    OPENSSL_free(re);
    ECDSA_SIG_free(sig);
    return same;
}

}  // namespace

TEST_CASE("ECDSA raw r||s becomes canonical DER", "[encoding]") {
    for (size_t width : {32u, 48u}) {
        for (int pattern = 0; pattern < 4; ++pattern) {
            std::vector<uint8_t> raw(2 * width, 0x11);
            if (pattern & 1) raw[0] = 0x80;                       // r needs a leading 0x00
            if (pattern & 2) raw[width] = raw[width + 1] = 0x00;  // s has leading zeros to strip
            std::vector<uint8_t> der;
            REQUIRE(keyward::ecdsa_raw_to_der(raw, der));
            std::vector<uint8_t> back;
            INFO("width " << width << " pattern " << pattern);
            REQUIRE(parse_sig(der, width, back));
            CHECK(back == raw);
        }
    }
    std::vector<uint8_t> zero(64, 0), der;
    REQUIRE(keyward::ecdsa_raw_to_der(zero, der));
    std::vector<uint8_t> back;
    CHECK(parse_sig(der, 32, back));
    std::vector<uint8_t> odd(63, 1);
    CHECK_FALSE(keyward::ecdsa_raw_to_der(odd, der));
}

TEST_CASE("DigestInfo for SHA-256/384/512 and nothing else", "[encoding]") {
    uint8_t out[kMaxDigestInfoSize];
    std::vector<uint8_t> d32(32, 0xab), d48(48, 0xab), d64(64, 0xab), d20(20, 0xab);
    CHECK(build_digest_info(d32, out) == 51);
    CHECK(out[14] == 0x01);  // id-sha256 ends in .1
    CHECK(build_digest_info(d48, out) == 67);
    CHECK(out[14] == 0x02);
    CHECK(build_digest_info(d64, out) == 83);
    CHECK(out[14] == 0x03);
    CHECK(out[82] == 0xab);
    CHECK(build_digest_info(d20, out) == 0);
}
