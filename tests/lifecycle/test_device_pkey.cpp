// The EVP_PKEY that signs through KeyAccess (agent/lifecycle/cmp/device_pkey.hpp), over a
// KeyAccess backed by an in-memory software key: OpenSSL's own signing calls end in the
// callback with the right scheme and input, the signatures verify with the public key,
// raw RSA is refused, and the device's reason for a failure is kept.
#include <catch2/catch.hpp>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <string>
#include <vector>

#include "agent/lifecycle/cmp/device_pkey.hpp"

using namespace keyward;
using namespace keyward::lifecycle;

namespace {

struct SoftwareDevice {
    PkeyPtr key;
    std::string type;
    std::vector<ipc::Scheme> schemes;
    std::vector<std::pair<ipc::Scheme, size_t>> calls;  // scheme and input length of each signature
    Status fail_with;                                   // when set, every signature fails so

    SoftwareDevice(const char* algorithm, const char* param, std::string key_type, std::vector<ipc::Scheme> s)
            : type(std::move(key_type)), schemes(std::move(s)) {
        EVP_PKEY* k = std::string(algorithm) == "EC" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", param)
                                                     : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
        REQUIRE(k != nullptr);
        key.reset(k);
    }

    KeyAccess access() {
        KeyAccess a;
        a.describe = [this](const std::string& name) -> Result<ipc::KeyInfo> {
            if (name != "dev") return Status{ErrorCode::no_such_key, "no key named " + name};
            ipc::KeyInfo info;
            info.name = name;
            info.type = type;
            unsigned char* der = nullptr;
            int n = i2d_PUBKEY(key.get(), &der);
            REQUIRE(n > 0);
            info.spki.assign(der, der + n);
            OPENSSL_free(der);
            info.schemes = schemes;
            return info;
        };
        a.sign = [this](const std::string&, ipc::Scheme scheme,
                        std::span<const uint8_t> digest) -> Result<std::vector<uint8_t>> {
            calls.emplace_back(scheme, digest.size());
            if (!fail_with.ok()) return fail_with;
            EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key.get(), nullptr);
            REQUIRE(EVP_PKEY_sign_init(ctx) == 1);
            const ipc::SchemeInfo* info = ipc::scheme_info(scheme);
            if (info->family == ipc::SchemeFamily::rsa_pkcs1) {
                REQUIRE(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1);
                REQUIRE(EVP_PKEY_CTX_set_signature_md(ctx, EVP_get_digestbyname(std::string(info->digest).c_str())) ==
                        1);
            }
            size_t len = 0;
            REQUIRE(EVP_PKEY_sign(ctx, nullptr, &len, digest.data(), digest.size()) == 1);
            std::vector<uint8_t> sig(len);
            REQUIRE(EVP_PKEY_sign(ctx, sig.data(), &len, digest.data(), digest.size()) == 1);
            sig.resize(len);
            EVP_PKEY_CTX_free(ctx);
            return sig;
        };
        return a;
    }
};

std::vector<uint8_t> digest_sign(EVP_PKEY* pkey, const char* md, const std::string& message, bool& ok) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    std::vector<uint8_t> sig(1024);
    size_t len = sig.size();
    ok = EVP_DigestSignInit_ex(ctx, nullptr, md, nullptr, nullptr, pkey, nullptr) == 1 &&
         EVP_DigestSign(ctx, sig.data(), &len, reinterpret_cast<const unsigned char*>(message.data()),
                        message.size()) == 1;
    EVP_MD_CTX_free(ctx);
    sig.resize(ok ? len : 0);
    return sig;
}

bool digest_verify(EVP_PKEY* pub, const char* md, const std::string& message, const std::vector<uint8_t>& sig) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    bool ok = EVP_DigestVerifyInit_ex(ctx, nullptr, md, nullptr, nullptr, pub, nullptr) == 1 &&
              EVP_DigestVerify(ctx, sig.data(), sig.size(), reinterpret_cast<const unsigned char*>(message.data()),
                               message.size()) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

}  // namespace

TEST_CASE("device pkey: ECDSA P-256 through the device verifies with the public key", "[device_pkey]") {
    SoftwareDevice dev("EC", "P-256", "ec-p256", {ipc::Scheme::ecdsa_secp256r1_sha256});
    KeyAccess access = dev.access();
    auto pkey = make_device_pkey(access, "dev");
    REQUIRE(pkey.ok());
    bool ok = false;
    auto sig = digest_sign(pkey->get(), "SHA256", "protected part of a CMP message", ok);
    REQUIRE(ok);
    CHECK(digest_verify(dev.key.get(), "SHA256", "protected part of a CMP message", sig));
    REQUIRE(dev.calls.size() == 1);
    CHECK(dev.calls[0] == std::make_pair(ipc::Scheme::ecdsa_secp256r1_sha256, size_t{32}));
    CHECK(last_device_error(pkey->get()).ok());
    // OpenSSL's own key comparison sees the device's public key.
    CHECK(EVP_PKEY_eq(pkey->get(), dev.key.get()) == 1);
}

TEST_CASE("device pkey: a P-384 key signs a SHA-256 digest fitted to the curve", "[device_pkey]") {
    SoftwareDevice dev("EC", "P-384", "ec-p384", {ipc::Scheme::ecdsa_secp384r1_sha384});
    KeyAccess access = dev.access();
    auto pkey = make_device_pkey(access, "dev");
    REQUIRE(pkey.ok());
    bool ok = false;
    auto sig = digest_sign(pkey->get(), "SHA256", "m", ok);
    REQUIRE(ok);
    CHECK(digest_verify(dev.key.get(), "SHA256", "m", sig));
    REQUIRE(dev.calls.size() == 1);
    CHECK(dev.calls[0] == std::make_pair(ipc::Scheme::ecdsa_secp384r1_sha384, size_t{48}));
}

TEST_CASE("device pkey: RSA signs PKCS#1 v1.5 and refuses raw private operations", "[device_pkey]") {
    SoftwareDevice dev("RSA", nullptr, "rsa-2048",
                       {ipc::Scheme::rsa_pkcs1_sha256, ipc::Scheme::rsa_pkcs1_sha384, ipc::Scheme::rsa_pkcs1_sha512});
    KeyAccess access = dev.access();
    auto pkey = make_device_pkey(access, "dev");
    REQUIRE(pkey.ok());
    for (const char* md : {"SHA256", "SHA384", "SHA512"}) {
        bool ok = false;
        auto sig = digest_sign(pkey->get(), md, "message", ok);
        REQUIRE(ok);
        CHECK(digest_verify(dev.key.get(), md, "message", sig));
    }
    REQUIRE(dev.calls.size() == 3);
    CHECK(dev.calls[0].first == ipc::Scheme::rsa_pkcs1_sha256);
    CHECK(dev.calls[2].first == ipc::Scheme::rsa_pkcs1_sha512);

    // Decryption with the private key: a raw operation, never offered.
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(pkey->get(), nullptr);
    REQUIRE(ctx != nullptr);
    std::vector<unsigned char> in(256, 1), out(256);
    size_t outlen = out.size();
    const bool decrypted =
        EVP_PKEY_decrypt_init(ctx) == 1 && EVP_PKEY_decrypt(ctx, out.data(), &outlen, in.data(), in.size()) == 1;
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    CHECK_FALSE(decrypted);
    CHECK(dev.calls.size() == 3);
}

TEST_CASE("device pkey: a device failure fails the signature and keeps the device's reason", "[device_pkey]") {
    SoftwareDevice dev("EC", "P-256", "ec-p256", {ipc::Scheme::ecdsa_secp256r1_sha256});
    dev.fail_with = Status{ErrorCode::device_unavailable, "token 'hsm': cannot read the PIN file /etc/keyward/hsm.pin"};
    KeyAccess access = dev.access();
    auto pkey = make_device_pkey(access, "dev");
    REQUIRE(pkey.ok());
    ERR_clear_error();
    bool ok = true;
    digest_sign(pkey->get(), "SHA256", "m", ok);
    CHECK_FALSE(ok);
    Status why = last_device_error(pkey->get());
    CHECK(why.code == ErrorCode::device_unavailable);
    CHECK_THAT(why.message, Catch::Contains("PIN file"));
    ERR_clear_error();

    dev.fail_with = Status::success();  // the device is back
    digest_sign(pkey->get(), "SHA256", "m", ok);
    CHECK(ok);
    CHECK(last_device_error(pkey->get()).ok());
}

TEST_CASE("device pkey: unknown keys and unsupported schemes are errors, not crashes", "[device_pkey]") {
    SoftwareDevice dev("EC", "P-256", "ec-p256", {});  // the device offers no scheme for this key
    KeyAccess access = dev.access();
    auto missing = make_device_pkey(access, "nope");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.status().code == ErrorCode::no_such_key);

    auto pkey = make_device_pkey(access, "dev");
    REQUIRE(pkey.ok());
    bool ok = true;
    digest_sign(pkey->get(), "SHA256", "m", ok);
    ERR_clear_error();
    CHECK_FALSE(ok);
    CHECK(dev.calls.empty());
    CHECK(last_device_error(pkey->get()).code == ErrorCode::unsupported_scheme);
    // A plain software key is not a device key.
    CHECK(last_device_error(dev.key.get()).ok());
}

TEST_CASE("device pkey: requests no scheme fits are refused before the device is asked", "[device_pkey]") {
    SoftwareDevice rsa("RSA", nullptr, "rsa-2048", {ipc::Scheme::rsa_pkcs1_sha256});
    KeyAccess rsa_access = rsa.access();
    auto rsa_key = make_device_pkey(rsa_access, "dev");
    REQUIRE(rsa_key.ok());
    bool ok = true;
    digest_sign(rsa_key->get(), "SHA1", "m", ok);  // PKCS#1 with SHA-1: no agent scheme
    ERR_clear_error();
    CHECK_FALSE(ok);

    SoftwareDevice p521("EC", "P-521", "ec-p521", {});  // a curve keyward has no scheme for
    KeyAccess p521_access = p521.access();
    auto p521_key = make_device_pkey(p521_access, "dev");
    REQUIRE(p521_key.ok());
    digest_sign(p521_key->get(), "SHA512", "m", ok);
    ERR_clear_error();
    CHECK_FALSE(ok);

    CHECK(rsa.calls.empty());
    CHECK(p521.calls.empty());
}

TEST_CASE("device pkey: copies of the key object sign through the same device key", "[device_pkey]") {
    SoftwareDevice dev("EC", "P-256", "ec-p256", {ipc::Scheme::ecdsa_secp256r1_sha256});
    KeyAccess access = dev.access();
    auto pkey = make_device_pkey(access, "dev");
    REQUIRE(pkey.ok());
    // EVP_PKEY_dup copies the legacy EC_KEY (and with it the binding in its ex_data).
    PkeyPtr copy(EVP_PKEY_dup(pkey->get()));
    REQUIRE(copy);
    pkey->reset();  // the copy must not depend on the original
    bool ok = false;
    auto sig = digest_sign(copy.get(), "SHA256", "m", ok);
    REQUIRE(ok);
    CHECK(digest_verify(dev.key.get(), "SHA256", "m", sig));
    CHECK(dev.calls.size() == 1);
}
