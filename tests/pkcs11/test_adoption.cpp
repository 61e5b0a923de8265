// Keys made by another tool, adopted by an RFC 7512 object URI (a smartcard's keys, here on
// SoftHSM2): listed under the configured name with the certificate stored next to them, never
// generated or destroyed on a card token, and CKA_ALWAYS_AUTHENTICATE keys signing with a
// context-specific login per signature.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "tests/pkcs11/softhsm_token.hpp"
#include "tests/pkcs11/verify.hpp"

using namespace keyward;
using keyward::test::random_bytes;
using keyward::test::run_program;

namespace {

// An EC key with the given id and label made by pkcs11-tool (as a card's provisioning tool
// would), plus a certificate object with the same id. Returns the certificate's DER.
std::vector<uint8_t> provision(const test::SoftHsmToken& token, const std::string& id_hex, const std::string& label,
                               bool always_auth) {
    std::vector<std::string> gen = {
        "pkcs11-tool",  "--module",     test::kSoftHsmModule, "--token-label", token.label(), "--login", "--pin",
        test::kUserPin, "--keypairgen", "--key-type",         "EC:prime256v1", "--id",        id_hex,    "--label",
        label};
    if (always_auth) gen.push_back("--always-auth");
    REQUIRE(run_program(gen) == 0);
    const std::string key = token.dir() + "/cert.key", der = token.dir() + "/cert-" + id_hex + ".der";
    REQUIRE(run_program({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                         "-keyout", key, "-subj", "/CN=" + label, "-days", "2", "-outform", "DER", "-out", der}) == 0);
    REQUIRE(run_program({"pkcs11-tool", "--module", test::kSoftHsmModule, "--token-label", token.label(), "--login",
                         "--pin", test::kUserPin, "--write-object", der, "--type", "cert", "--id", id_hex, "--label",
                         label}) == 0);
    std::ifstream in(der, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("adoption: a card's key by id is listed under its keyward name with its certificate", "[adopt]") {
    test::SoftHsmToken token("adopt");
    const auto cert = provision(token, "0001", "CAC ID Certificate", false);
    provision(token, "02", "Other key", false);
    auto config = token.config(1);
    config.card = true;
    config.adopted = {{"login", "pkcs11:id=%00%01"}, {"bylabel", "pkcs11:object=Other%20key;type=private"}};
    auto opened = pkcs11::open_backend(config);
    INFO(opened.status().message);
    REQUIRE(opened.ok());
    auto& backend = *opened.value();

    auto listed = backend.list_keys();
    REQUIRE(listed.ok());
    REQUIRE(listed.value().size() == 2);  // a card token lists its adopted keys only, by their names
    const auto& login = listed.value()[1].label == "login" ? listed.value()[1] : listed.value()[0];
    CHECK(login.label == "login");
    CHECK(login.certificate == cert);

    auto described = backend.describe("login");
    REQUIRE(described.ok());
    CHECK(described.value().certificate == cert);

    const auto digest = random_bytes(32);
    auto sig = backend.sign("login", ipc::Scheme::ecdsa_secp256r1_sha256, digest);
    INFO(sig.status().message);
    REQUIRE(sig.ok());
    CHECK(test::verify_signature(login.spki, ipc::Scheme::ecdsa_secp256r1_sha256, digest, sig.value()));

    auto made = backend.generate("new", KeyType::ec_p256);
    REQUIRE_FALSE(made.ok());
    CHECK_THAT(made.status().message, Catch::Contains("smartcard"));
    auto gone = backend.destroy("login");
    REQUIRE_FALSE(gone.ok());
    CHECK_THAT(gone.message, Catch::Contains("never deletes a key it did not make"));
    CHECK(backend.sign("login", ipc::Scheme::ecdsa_secp256r1_sha256, digest).ok());  // still there
}

TEST_CASE("adoption: a URI that matches nothing or is malformed is reported by key name", "[adopt]") {
    test::SoftHsmToken token("adoptbad");
    provision(token, "01", "a", false);
    auto config = token.config(1);
    config.adopted = {{"missing", "pkcs11:id=%7f"}};
    auto opened = pkcs11::open_backend(config);
    REQUIRE(opened.ok());
    auto sig = opened.value()->sign("missing", ipc::Scheme::ecdsa_secp256r1_sha256, random_bytes(32));
    REQUIRE_FALSE(sig.ok());
    CHECK(sig.status().code == ErrorCode::no_such_key);
    CHECK_THAT(sig.status().message, Catch::Contains("pkcs11:id=%7f"));

    config.adopted = {{"bad", "pkcs11:id=%7"}};
    auto refused = pkcs11::open_backend(config);
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(refused.status().message, Catch::Contains("key bad"));
}

TEST_CASE("adoption: CKA_ALWAYS_AUTHENTICATE keys log in per signature (CKU_CONTEXT_SPECIFIC)", "[adopt][pin]") {
    test::SoftHsmToken token("always");
    provision(token, "02", "PIV signature key", true);
    auto config = token.config(1);
    config.adopted = {{"sig9c", "pkcs11:id=%02"}};
    auto opened = pkcs11::open_backend(config);
    REQUIRE(opened.ok());
    auto& backend = *opened.value();
    auto key = backend.describe("sig9c");
    REQUIRE(key.ok());
    for (int i = 0; i < 3; ++i) {  // SoftHSM2 refuses C_Sign on such a key without the context login
        const auto digest = random_bytes(32);
        auto sig = backend.sign("sig9c", ipc::Scheme::ecdsa_secp256r1_sha256, digest);
        INFO(sig.status().message);
        REQUIRE(sig.ok());
        CHECK(test::verify_signature(key.value().spki, ipc::Scheme::ecdsa_secp256r1_sha256, digest, sig.value()));
    }
}
