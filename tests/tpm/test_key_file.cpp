// The TSS2 PRIVATE KEY codec without a TPM.
#include <catch2/catch.hpp>

#include "tpm/key_file.hpp"
#include "tpm/public_key.hpp"

#include <tss2/tss2_mu.h>

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

std::span<const uint8_t> bytes(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

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

namespace {

// A hand-made DER TLV (short or two-byte length), to build files the encoder never writes.
std::vector<uint8_t> tlv(uint8_t tag, const std::vector<uint8_t>& value) {
    std::vector<uint8_t> out = {tag};
    if (value.size() < 0x80) {
        out.push_back(static_cast<uint8_t>(value.size()));
    } else {
        out.push_back(0x82);
        out.push_back(static_cast<uint8_t>(value.size() >> 8));
        out.push_back(static_cast<uint8_t>(value.size()));
    }
    out.insert(out.end(), value.begin(), value.end());
    return out;
}

std::vector<uint8_t> cat(std::initializer_list<std::vector<uint8_t>> parts) {
    std::vector<uint8_t> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

const std::vector<uint8_t> kLoadableOid = tlv(0x06, {0x67, 0x81, 0x05, 0x0A, 0x01, 0x03});
const std::vector<uint8_t> kOwnerParent = tlv(0x02, {0x40, 0x00, 0x00, 0x01});

// The marshalled public and private parts of sample(), as the file's two OCTET STRINGs carry them.
std::vector<uint8_t> marshalled_pub() {
    const auto der = tpm::encode_key_file_der(sample(true, 0x40000001));
    auto parsed = tpm::parse_key_file(der);
    REQUIRE(parsed.ok());
    std::vector<uint8_t> out(sizeof(TPM2B_PUBLIC));
    size_t len = 0;
    REQUIRE(Tss2_MU_TPM2B_PUBLIC_Marshal(&parsed->pub, out.data(), out.size(), &len) == TSS2_RC_SUCCESS);
    out.resize(len);
    return out;
}
const std::vector<uint8_t> kPriv = {0x00, 0x03, 0x01, 0x02, 0x03};

std::string refusal(const std::vector<uint8_t>& der) {
    auto r = tpm::parse_key_file(der);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code == ErrorCode::invalid_argument);
    CHECK(r.status().message.rfind("not a usable TSS2 PRIVATE KEY: ", 0) == 0);
    return r.status().message;
}

}  // namespace

TEST_CASE("tpm key file: the hand-made minimal structure parses like the encoder's", "[tpm][keyfile]") {
    const auto der = tlv(0x30, cat({kLoadableOid, kOwnerParent, tlv(0x04, marshalled_pub()), tlv(0x04, kPriv)}));
    auto parsed = tpm::parse_key_file(der);
    REQUIRE(parsed.ok());
    CHECK_FALSE(parsed->empty_auth);  // emptyAuth absent: the key has an auth value
    CHECK(parsed->parent == 0x40000001);
    CHECK(parsed->priv.size == 3);
    CHECK(tpm::encode_key_file_der(parsed.value()) == der);
    // An explicit emptyAuth FALSE means the same.
    const auto explicit_false = tlv(0x30, cat({kLoadableOid, tlv(0xA0, tlv(0x01, {0x00})), kOwnerParent,
                                               tlv(0x04, marshalled_pub()), tlv(0x04, kPriv)}));
    auto parsed_false = tpm::parse_key_file(explicit_false);
    REQUIRE(parsed_false.ok());
    CHECK_FALSE(parsed_false->empty_auth);
}

TEST_CASE("tpm key file: bytes after the structure are refused", "[tpm][keyfile]") {
    auto der = tpm::encode_key_file_der(sample(true, 0x40000001));
    der.push_back(0x00);
    CHECK(refusal(der).find("after") != std::string::npos);
    // ... and so is an unknown field after privkey, inside the SEQUENCE.
    const auto extra =
        tlv(0x30, cat({kLoadableOid, kOwnerParent, tlv(0x04, marshalled_pub()), tlv(0x04, kPriv), tlv(0x04, {0x01})}));
    refusal(extra);
}

TEST_CASE("tpm key file: garbage is refused", "[tpm][keyfile]") {
    refusal({0x00});
    refusal({0xFF, 0xFF, 0xFF, 0xFF});
    refusal({'h', 'e', 'l', 'l', 'o'});
    refusal(tlv(0x30, {}));                                 // an empty SEQUENCE
    refusal(tlv(0x30, cat({kLoadableOid, kOwnerParent})));  // no public or private part
    refusal(tlv(0x04, marshalled_pub()));                   // not a SEQUENCE at all
    // Every field present but in the wrong order.
    refusal(tlv(0x30, cat({kOwnerParent, kLoadableOid, tlv(0x04, marshalled_pub()), tlv(0x04, kPriv)})));
    // A PEM block of the right name around garbage.
    const std::string pem = "-----BEGIN TSS2 PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END TSS2 PRIVATE KEY-----\n";
    refusal(std::vector<uint8_t>(pem.begin(), pem.end()));
    // The public and private parts must be exactly one marshalled TPM2B each.
    auto pub_plus = marshalled_pub();
    pub_plus.push_back(0);
    CHECK(refusal(tlv(0x30, cat({kLoadableOid, kOwnerParent, tlv(0x04, pub_plus), tlv(0x04, kPriv)})))
              .find("TPM2B_PUBLIC") != std::string::npos);
    CHECK(refusal(tlv(0x30, cat({kLoadableOid, kOwnerParent, tlv(0x04, marshalled_pub()), tlv(0x04, {0x00})})))
              .find("TPM2B_PRIVATE") != std::string::npos);
}

TEST_CASE("tpm key file: oversized lengths and values are refused", "[tpm][keyfile]") {
    const auto der = tpm::encode_key_file_der(sample(true, 0x40000001));
    // The outer length claims far more than there is.
    std::vector<uint8_t> long_claim = {0x30, 0x84, 0x7F, 0xFF, 0xFF, 0xFF};
    long_claim.insert(long_claim.end(), der.begin() + (der[1] & 0x80 ? 2 + (der[1] & 0x7F) : 2), der.end());
    refusal(long_claim);
    // A TPM2B whose size field exceeds its buffer (TPM2B_PRIVATE holds less than 0xFFFF bytes).
    std::vector<uint8_t> huge_priv = {0xFF, 0xFF};
    huge_priv.resize(2 + 0x1000, 0xAB);
    CHECK(refusal(tlv(0x30, cat({kLoadableOid, kOwnerParent, tlv(0x04, marshalled_pub()), tlv(0x04, huge_priv)})))
              .find("TPM2B_PRIVATE") != std::string::npos);
    // Parent handles are 32-bit and not negative.
    for (const auto& parent : {tlv(0x02, {0x01, 0x00, 0x00, 0x00, 0x01}), tlv(0x02, {0x80, 0x00, 0x00, 0x01})})
        CHECK(refusal(tlv(0x30, cat({kLoadableOid, parent, tlv(0x04, marshalled_pub()), tlv(0x04, kPriv)})))
                  .find("parent") != std::string::npos);
}

TEST_CASE("tpm key file: policies, import secrets and other types are refused by name", "[tpm][keyfile]") {
    const auto rest = cat({kOwnerParent, tlv(0x04, marshalled_pub()), tlv(0x04, kPriv)});
    const auto policy =
        tlv(0xA1, tlv(0x30, tlv(0x30, cat({tlv(0xA0, tlv(0x02, {0x01, 0x6B})), tlv(0xA1, tlv(0x04, {0x00}))}))));
    CHECK(refusal(tlv(0x30, cat({kLoadableOid, policy, rest}))).find("policy") != std::string::npos);
    CHECK(refusal(tlv(0x30, cat({kLoadableOid, tlv(0xA2, tlv(0x04, {0x01, 0x02})), rest}))).find("secret") !=
          std::string::npos);
    // 1.2.840.113549.1.1.1 (rsaEncryption): some other structure with an OID first.
    CHECK(refusal(tlv(0x30, cat({tlv(0x06, {0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01}), rest})))
              .find("2.23.133.10.1.3") != std::string::npos);
}
