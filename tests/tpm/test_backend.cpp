// The TPM backend against a real swtpm (three object slots, no resource manager): every key
// type and scheme checked by OpenSSL, many keys, a restarted TPM, auth values, import.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/tpm/swtpm.hpp"
#include "tpm/key_file.hpp"
#include "tpm/tpm_backend.hpp"

using namespace keyward;

namespace {

std::unique_ptr<KeyBackend> open(const test::Swtpm& tpm, const std::string& auth_file = {}) {
    auto b = tpm::open_backend({tpm.tcti(), tpm.key_dir(), auth_file});
    REQUIRE(b.ok());
    return std::move(b).value();
}

std::string attribute(const BackendKey& key, const std::string& name) {
    for (const auto& a : key.attributes)
        if (a.name == name) return a.value;
    return "(absent)";
}

void check_signs(KeyBackend& backend, const BackendKey& key) {
    REQUIRE_FALSE(key.schemes.empty());
    for (auto scheme : key.schemes) {
        const auto* info = ipc::scheme_info(scheme);
        INFO(key.label << " " << info->name);
        const auto digest = test::random_bytes(info->digest_size);
        auto sig = backend.sign(key.label, scheme, digest);
        REQUIRE(sig.ok());
        CHECK(test::verify_signature(key.spki, scheme, digest, sig.value()));
    }
}

// Transient objects currently loaded in the TPM.
int transient_objects(const test::Swtpm& tpm) {
    std::string out;
    REQUIRE(tpm.shell("tpm2_getcap handles-transient", &out) == 0);
    int n = 0;
    for (size_t p = out.find("0x80"); p != std::string::npos; p = out.find("0x80", p + 1)) ++n;
    return n;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Owner-only, as the backend requires of a file holding an auth value.
void write_text(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::trunc) << text;
    std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

}  // namespace

TEST_CASE("tpm: every key type signs with every scheme it offers, verified by OpenSSL", "[tpm]") {
    test::Swtpm tpm;
    auto backend = open(tpm);
    CHECK(backend->kind() == "tpm");
    CHECK(backend->max_concurrency() == 1);
    CHECK(backend->health() == DeviceHealth::present);
    CHECK(backend->description().find("via swtpm:path=") != std::string::npos);

    const std::pair<KeyType, std::vector<ipc::Scheme>> cases[] = {
        {KeyType::ec_p256, {ipc::Scheme::ecdsa_secp256r1_sha256}},
        {KeyType::ec_p384, {ipc::Scheme::ecdsa_secp384r1_sha384}},
        {KeyType::rsa_2048,
         {ipc::Scheme::rsa_pkcs1_sha256, ipc::Scheme::rsa_pkcs1_sha384, ipc::Scheme::rsa_pkcs1_sha512}},
        {KeyType::rsa_3072, {ipc::Scheme::rsa_pkcs1_sha256}},
    };
    for (const auto& [type, must_have] : cases) {
        const std::string label = "k-" + std::string(key_type_name(type));
        INFO(label);
        auto key = backend->generate(label, type);
        REQUIRE(key.ok());
        CHECK(key->type == type);
        for (auto s : must_have) CHECK(std::find(key->schemes.begin(), key->schemes.end(), s) != key->schemes.end());
        // Read back from the TPM, as created.
        for (const char* a : {"fixedTPM", "fixedParent", "sensitiveDataOrigin", "userWithAuth", "sign"})
            CHECK(attribute(key.value(), a) == "true");
        for (const char* a : {"decrypt", "restricted"}) CHECK(attribute(key.value(), a) == "false");
        CHECK(attribute(key.value(), "emptyAuth") == "true");
        CHECK(attribute(key.value(), "parent").rfind("0x40000001", 0) == 0);
        if (!key_type_is_ec(type)) {
            // swtpm (libtpms 0.9) uses salt = hash length: TLS 1.3 works, so PSS is offered.
            CHECK(attribute(key.value(), "tls13_rsa_pss") == "ok");
            CHECK(std::find(key->schemes.begin(), key->schemes.end(), ipc::Scheme::rsa_pss_rsae_sha256) !=
                  key->schemes.end());
        }
        check_signs(*backend, key.value());

        // The blob: a TSS2 PRIVATE KEY PEM, 0600.
        const std::string path = tpm.key_dir() + "/" + label + ".pem";
        struct stat st {};
        REQUIRE(::stat(path.c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0600);
        CHECK(read_text(path).rfind("-----BEGIN TSS2 PRIVATE KEY-----", 0) == 0);
    }

    SECTION("wrong scheme, wrong digest size, unknown key, taken name, rsa-4096") {
        auto d32 = test::random_bytes(32);
        CHECK(backend->sign("k-ec-p256", ipc::Scheme::rsa_pkcs1_sha256, d32).status().code ==
              ErrorCode::unsupported_scheme);
        CHECK(backend->sign("k-ec-p384", ipc::Scheme::ecdsa_secp256r1_sha256, d32).status().code ==
              ErrorCode::unsupported_scheme);
        CHECK(backend->sign("k-ec-p256", ipc::Scheme::ecdsa_secp256r1_sha256, test::random_bytes(20)).status().code ==
              ErrorCode::invalid_argument);
        CHECK(backend->sign("nope", ipc::Scheme::ecdsa_secp256r1_sha256, d32).status().code == ErrorCode::no_such_key);
        CHECK(backend->generate("k-ec-p256", KeyType::ec_p256).status().code == ErrorCode::key_exists);
        CHECK(backend->generate("big", KeyType::rsa_4096).status().code == ErrorCode::invalid_argument);
    }

    SECTION("a new backend on the same directory lists and signs the same keys") {
        backend.reset();
        auto again = open(tpm);
        auto keys = again->list_keys();
        REQUIRE(keys.ok());
        REQUIRE(keys->size() == 4);
        for (const auto& key : keys.value()) check_signs(*again, key);
        REQUIRE(again->destroy("k-rsa-2048").ok());
        CHECK(again->list_keys()->size() == 3);
        CHECK(again->destroy("k-rsa-2048").code == ErrorCode::no_such_key);
        CHECK(again->describe("k-rsa-2048").status().code == ErrorCode::no_such_key);
    }
    CHECK(transient_objects(tpm) <= 1);
}

TEST_CASE("tpm: ten keys signing in turn on three slots without a resource manager", "[tpm]") {
    test::Swtpm tpm;
    auto backend = open(tpm);
    std::vector<BackendKey> keys;
    for (int i = 0; i < 10; ++i) {
        auto key = backend->generate("many-" + std::to_string(i), i % 3 == 2 ? KeyType::ec_p384 : KeyType::ec_p256);
        REQUIRE(key.ok());
        keys.push_back(key.value());
    }
    for (int round = 0; round < 3; ++round)
        for (const auto& key : keys) {
            const auto scheme = key.schemes.front();
            const auto digest = test::random_bytes(ipc::scheme_info(scheme)->digest_size);
            auto sig = backend->sign(key.label, scheme, digest);
            INFO(key.label << ": " << sig.status().message);
            REQUIRE(sig.ok());  // no TPM_RC_OBJECT_MEMORY (0x902)
            CHECK(test::verify_signature(key.spki, scheme, digest, sig.value()));
        }
    // At most the last key stays loaded; the other two slots are free for other programs.
    CHECK(transient_objects(tpm) <= 1);
    REQUIRE(tpm.shell("tpm2_createprimary -Q -C o -c " + tpm.dir() + "/p.ctx && tpm2_flushcontext -t") == 0);

    SECTION("objects flushed behind the backend's back are reloaded") {
        REQUIRE(tpm.shell("tpm2_flushcontext -t") == 0);
        const auto digest = test::random_bytes(32);
        auto sig = backend->sign(keys[9].label, ipc::Scheme::ecdsa_secp256r1_sha256, digest);
        INFO(sig.status().message);
        REQUIRE(sig.ok());
        CHECK(test::verify_signature(keys[9].spki, ipc::Scheme::ecdsa_secp256r1_sha256, digest, sig.value()));
    }
}

TEST_CASE("tpm: swtpm killed and restarted with the same state: the next sign succeeds", "[tpm]") {
    test::Swtpm tpm;
    auto backend = open(tpm);
    auto key = backend->generate("survivor", KeyType::ec_p256);
    REQUIRE(key.ok());
    const auto digest = test::random_bytes(32);
    REQUIRE(backend->sign("survivor", ipc::Scheme::ecdsa_secp256r1_sha256, digest).ok());

    tpm.kill();
    auto down = backend->sign("survivor", ipc::Scheme::ecdsa_secp256r1_sha256, digest);
    CHECK(down.status().code == ErrorCode::device_unavailable);
    CHECK(backend->health() == DeviceHealth::removed);

    tpm.restart();
    auto sig = backend->sign("survivor", ipc::Scheme::ecdsa_secp256r1_sha256, digest);
    INFO(sig.status().message);
    REQUIRE(sig.ok());
    CHECK(test::verify_signature(key->spki, ipc::Scheme::ecdsa_secp256r1_sha256, digest, sig.value()));
    CHECK(backend->health() == DeviceHealth::present);

    SECTION("a restart between two signs, without a failed call in between") {
        tpm.restart();
        auto again = backend->sign("survivor", ipc::Scheme::ecdsa_secp256r1_sha256, digest);
        INFO(again.status().message);
        REQUIRE(again.ok());
    }
}

TEST_CASE("tpm: a key with an auth value signs with the right one and refuses a wrong one once", "[tpm]") {
    test::Swtpm tpm;
    const std::string auth = tpm.dir() + "/auth";
    write_text(auth, "correct horse\n");
    auto backend = open(tpm, auth);
    auto key = backend->generate("guarded", KeyType::ec_p256);
    REQUIRE(key.ok());
    CHECK(attribute(key.value(), "emptyAuth") == "false");
    CHECK(attribute(key.value(), "noDA") == "false");
    check_signs(*backend, key.value());

    // The key file says so too, and nothing of the auth value is in it.
    const std::string blob = read_text(tpm.key_dir() + "/guarded.pem");
    auto parsed = tpm::parse_key_file(std::span(reinterpret_cast<const uint8_t*>(blob.data()), blob.size()));
    REQUIRE(parsed.ok());
    CHECK_FALSE(parsed->empty_auth);

    auto lockout_counter = [&] {
        std::string out;
        REQUIRE(tpm.shell("tpm2_getcap properties-variable", &out) == 0);
        auto p = out.find("TPM2_PT_LOCKOUT_COUNTER:");
        REQUIRE(p != std::string::npos);
        return std::stoi(out.substr(p + 24), nullptr, 0);
    };
    const int before = lockout_counter();

    write_text(auth, "wrong horse\n");
    const auto digest = test::random_bytes(32);
    for (int i = 0; i < 5; ++i) {
        auto sig = backend->sign("guarded", ipc::Scheme::ecdsa_secp256r1_sha256, digest);
        REQUIRE_FALSE(sig.ok());
        CHECK(sig.status().code == ErrorCode::device_error);
        CHECK(sig.status().message.find("TPM_RC_AUTH_FAIL") != std::string::npos);
        CHECK(sig.status().message.find("wrong horse") == std::string::npos);
    }
    // Five refusals, one try at the TPM: no retry storm toward dictionary-attack lockout.
    CHECK(lockout_counter() == before + 1);

    write_text(auth, "correct horse\n");
    auto sig = backend->sign("guarded", ipc::Scheme::ecdsa_secp256r1_sha256, digest);
    INFO(sig.status().message);
    REQUIRE(sig.ok());
    CHECK(test::verify_signature(key->spki, ipc::Scheme::ecdsa_secp256r1_sha256, digest, sig.value()));

    SECTION("without an auth file, the key says what it needs") {
        backend.reset();
        auto plain = open(tpm);
        auto refused = plain->sign("guarded", ipc::Scheme::ecdsa_secp256r1_sha256, digest);
        CHECK(refused.status().message.find("auth_file") != std::string::npos);
    }
}

TEST_CASE("tpm: keys made by tpm2-openssl and tpm2-tools import and sign", "[tpm]") {
    test::Swtpm tpm;
    auto backend = open(tpm);
    const std::string d = tpm.dir();
    REQUIRE(tpm.shell("openssl genpkey -provider tpm2 -provider default -algorithm EC -pkeyopt group:P-256 -out " + d +
                      "/ossl-ec.pem") == 0);
    REQUIRE(tpm.shell("openssl genpkey -provider tpm2 -provider default -algorithm RSA -pkeyopt bits:2048 -out " + d +
                      "/ossl-rsa.pem") == 0);
    REQUIRE(tpm.shell("tpm2_flushcontext -t; tpm2_createprimary -Q -C o -G ecc256:aes128cfb -g sha256 -c " + d +
                      "/prim.ctx -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|decrypt|noda'"
                      " && tpm2_create -Q -C " +
                      d + "/prim.ctx -G ecc384 -u " + d + "/t.pub -r " + d +
                      "/t.priv && tpm2_flushcontext -t && tpm2_encodeobject -C " + d + "/prim.ctx -u " + d +
                      "/t.pub -r " + d + "/t.priv -o " + d + "/tools.pem; tpm2_flushcontext -t") == 0);

    for (const char* name : {"ossl-ec", "ossl-rsa", "tools"}) {
        INFO(name);
        const std::string pem = read_text(d + "/" + name + ".pem");
        REQUIRE(pem.rfind("-----BEGIN TSS2 PRIVATE KEY-----", 0) == 0);
        auto key = backend->import_key(name, std::span(reinterpret_cast<const uint8_t*>(pem.data()), pem.size()));
        INFO(key.status().message);
        REQUIRE(key.ok());
        check_signs(*backend, key.value());
        // Same public key as tpm2-openssl sees in the stored copy.
        std::string ours, theirs;
        REQUIRE(tpm.shell("openssl pkey -provider tpm2 -provider default -in " + tpm.key_dir() + "/" + name +
                              ".pem -pubout -outform DER | sha256sum",
                          &theirs) == 0);
        tpm.shell("tpm2_flushcontext -t");
        std::ofstream(d + "/spki.der", std::ios::binary)
            .write(reinterpret_cast<const char*>(key->spki.data()), static_cast<std::streamsize>(key->spki.size()));
        REQUIRE(tpm.shell("sha256sum < " + d + "/spki.der", &ours) == 0);
        CHECK(ours == theirs);
    }

    SECTION("and keyward's own key files load in tpm2-openssl") {
        auto key = backend->generate("ours", KeyType::ec_p256);
        REQUIRE(key.ok());
        std::string out;
        CHECK(tpm.shell("openssl pkey -provider tpm2 -provider default -in " + tpm.key_dir() + "/ours.pem -pubout",
                        &out) == 0);
        CHECK(out.find("BEGIN PUBLIC KEY") != std::string::npos);
        tpm.shell("tpm2_flushcontext -t");
    }

    SECTION("what cannot be imported") {
        const std::string junk = "-----BEGIN TSS2 PRIVATE KEY-----\nMAA=\n-----END TSS2 PRIVATE KEY-----\n";
        CHECK(backend->import_key("junk", std::span(reinterpret_cast<const uint8_t*>(junk.data()), junk.size()))
                  .status()
                  .code == ErrorCode::invalid_argument);
        const std::string pem = read_text(d + "/ossl-ec.pem");
        CHECK(backend->import_key("ossl-ec", std::span(reinterpret_cast<const uint8_t*>(pem.data()), pem.size()))
                  .status()
                  .code == ErrorCode::key_exists);
    }
}

TEST_CASE("tpm: with a persistent SRK at 0x81000001, new keys are made under it", "[tpm]") {
    test::Swtpm tpm;
    const std::string d = tpm.dir();
    REQUIRE(tpm.shell("tpm2_createprimary -Q -C o -G ecc256:aes128cfb -g sha256 -c " + d +
                      "/srk.ctx -a \"fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|decrypt|noda\""
                      " && tpm2_evictcontrol -Q -C o -c " +
                      d + "/srk.ctx 0x81000001 && tpm2_flushcontext -t") == 0);
    auto backend = open(tpm);
    auto key = backend->generate("under-srk", KeyType::ec_p256);
    INFO(key.status().message);
    REQUIRE(key.ok());
    CHECK(attribute(key.value(), "parent") == "0x81000001 (SRK)");
    check_signs(*backend, key.value());
    auto parsed = tpm::parse_key_file([&] {
        const std::string pem = read_text(tpm.key_dir() + "/under-srk.pem");
        return std::vector<uint8_t>(pem.begin(), pem.end());
    }());
    REQUIRE(parsed.ok());
    CHECK(parsed->parent == 0x81000001);
    // No slot is taken by the parent: only the key itself stays loaded.
    CHECK(transient_objects(tpm) <= 1);
    std::string out;
    CHECK(tpm.shell("openssl pkey -provider tpm2 -provider default -in " + tpm.key_dir() + "/under-srk.pem -pubout",
                    &out) == 0);
    CHECK(out.find("BEGIN PUBLIC KEY") != std::string::npos);
}
