// The TSS2 PRIVATE KEY codec without a TPM.
#include <catch2/catch.hpp>

#include "tpm/key_file.hpp"
#include "tpm/public_key.hpp"

using namespace keyward;

namespace {

tpm::KeyFile sample(bool empty_auth, TPM2_HANDLE parent) {
    tpm::KeyFile k;
    k.empty_auth = empty_auth;
    k.parent = parent;
    k.pub = *tpm::signing_key_template(KeyType::ec_p256);
    k.priv.size = 3;
    k.priv.buffer[0] = 1;
    k.priv.buffer[1] = 2;
    k.priv.buffer[2] = 3;
    return k;
}

std::span<const uint8_t> bytes(const std::string& s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

TEST_CASE("tpm key file: PEM and DER round trips keep auth, parent, public and private parts", "[tpm][keyfile]") {
    for (bool empty_auth : {true, false})
        for (TPM2_HANDLE parent : {TPM2_HANDLE(0x40000001), TPM2_HANDLE(0x81000001)}) {
            const auto k = sample(empty_auth, parent);
            const std::string pem = tpm::encode_key_file_pem(k);
            REQUIRE(pem.rfind("-----BEGIN TSS2 PRIVATE KEY-----\n", 0) == 0);
            for (auto parsed : {tpm::parse_key_file(bytes(pem)), tpm::parse_key_file(tpm::encode_key_file_der(k))}) {
                REQUIRE(parsed.ok());
                CHECK(parsed->empty_auth == empty_auth);
                CHECK(parsed->parent == parent);
                CHECK(parsed->pub.publicArea.type == TPM2_ALG_ECC);
                CHECK(parsed->pub.publicArea.objectAttributes == k.pub.publicArea.objectAttributes);
                CHECK(parsed->priv.size == 3);
                CHECK(parsed->priv.buffer[2] == 3);
            }
        }
}

TEST_CASE("tpm key file: the DER starts with the loadable-key OID and emptyAuth", "[tpm][keyfile]") {
    const auto der = tpm::encode_key_file_der(sample(true, 0x40000001));
    REQUIRE(der.size() > 20);
    CHECK(der[0] == 0x30);
    const size_t body = der[1] & 0x80 ? 2 + (der[1] & 0x7F) : 2;
    const std::vector<uint8_t> head(der.begin() + static_cast<long>(body), der.begin() + static_cast<long>(body) + 15);
    const std::vector<uint8_t> expected = {0x06, 0x06, 0x67, 0x81, 0x05, 0x0A, 0x01, 0x03,  // 2.23.133.10.1.3
                                           0xA0, 0x03, 0x01, 0x01, 0xFF,                    // [0] TRUE
                                           0x02, 0x04};                                     // parent INTEGER
    CHECK(head == expected);
}

TEST_CASE("tpm key file: malformed and unsupported files are refused with a reason", "[tpm][keyfile]") {
    CHECK_FALSE(tpm::parse_key_file(bytes("")).ok());
    CHECK_FALSE(tpm::parse_key_file(bytes("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n")).ok());
    auto der = tpm::encode_key_file_der(sample(true, 0x40000001));
    for (size_t cut : {size_t(1), size_t(10), der.size() - 1}) {
        std::vector<uint8_t> truncated(der.begin(), der.begin() + static_cast<long>(cut));
        CHECK_FALSE(tpm::parse_key_file(truncated).ok());
    }
    auto importable = der;
    importable[importable[1] & 0x80 ? 2 + (importable[1] & 0x7F) + 7 : 9] = 0x04;  // OID ...1.4
    auto r = tpm::parse_key_file(importable);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message.find("importable") != std::string::npos);
}
