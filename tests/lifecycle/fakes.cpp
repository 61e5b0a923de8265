#include "tests/lifecycle/fakes.hpp"

#include <catch2/catch.hpp>

#include <stdlib.h>

#include <ctime>
#include <filesystem>

#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "agent/lifecycle/identity_config.hpp"
#include "core/durable_file.hpp"
#include "core/key_types.hpp"
#include "ipc/keyref.hpp"
#include "pki/certificates.hpp"

namespace keyward::lifecycle::testing {
namespace fs = std::filesystem;

namespace {

// The issuer of the kind "test": every request goes to the CA's script.
class ScriptedIssuer final : public Issuer {
public:
    explicit ScriptedIssuer(TestCa& ca) : ca_(ca) {}
    std::string_view kind() const noexcept override { return "test"; }
    IssueResult submit(const IssueRequest& request) override { return ca_.answer(call("submit", request)); }
    IssueResult poll(const IssueRequest& request) override { return ca_.answer(call("poll", request)); }

private:
    static TestCa::Call call(const char* operation, const IssueRequest& r) {
        return {operation, r.key, r.csr_pem, r.cookie, r.current_cert_pem, r.current_key};
    }
    TestCa& ca_;
};

// The same request (subject, extensions) for a key that is not the device's.
std::string request_for_another_key(const std::string& csr_pem) {
    ossl::PKey other = make_key(KeyType::ec_p256);
    ossl::Bio in(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())));
    ossl::Req req(PEM_read_bio_X509_REQ(in.get(), nullptr, nullptr, nullptr));
    REQUIRE(req);
    REQUIRE(X509_REQ_set_pubkey(req.get(), other.get()) == 1);
    REQUIRE(X509_REQ_sign(req.get(), other.get(), EVP_sha256()) > 0);
    ossl::Bio out(BIO_new(BIO_s_mem()));
    REQUIRE(PEM_write_bio_X509_REQ(out.get(), req.get()) == 1);
    char* data = nullptr;
    const long len = BIO_get_mem_data(out.get(), &data);
    return std::string(data, static_cast<size_t>(len));
}

}  // namespace

std::vector<uint8_t> spki_of(EVP_PKEY* key) {
    unsigned char* der = nullptr;
    const int len = i2d_PUBKEY(key, &der);
    REQUIRE(len > 0);
    ossl::Bytes owned(der);
    return std::vector<uint8_t>(der, der + len);
}

ossl::PKey make_key(KeyType type) {
    EVP_PKEY* k = nullptr;
    switch (type) {
        case KeyType::ec_p256: k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"); break;
        case KeyType::ec_p384: k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"); break;
        default: k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(key_type_bits(type))); break;
    }
    REQUIRE(k != nullptr);
    return ossl::PKey(k);
}

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    ossl::Extension ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
    REQUIRE(ext);
    REQUIRE(X509_add_ext(cert, ext.get(), -1) == 1);
}

TempDir::TempDir() {
    char templ[] = "/tmp/keyward-lifecycle-XXXXXX";
    REQUIRE(::mkdtemp(templ) != nullptr);
    path_ = templ;
}

TempDir::~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

FakeClock::FakeClock() : now_(static_cast<int64_t>(std::time(nullptr))) {}

// --- the device -------------------------------------------------------------------------

KeyAccess SoftwareKeys::access() {
    KeyAccess a;
    a.describe = [this](const std::string& key) { return describe(key); };
    a.sign = [this](const std::string& key, Scheme scheme, std::span<const uint8_t> digest) {
        return sign(key, scheme, digest);
    };
    a.generate = [this](const std::string& key, const std::string& type, const std::string&) {
        return generate(key, type);
    };
    a.destroy = [this](const std::string& key) { return destroy(key); };
    a.remove_orphan = [this](const std::string& key, const std::string&) { return remove_orphan(key); };
    return a;
}

std::vector<std::string> SoftwareKeys::names() const {
    std::vector<std::string> out;
    for (const auto& [name, key] : keys_) out.push_back(name);
    return out;
}

std::vector<uint8_t> SoftwareKeys::spki(const std::string& key) const {
    auto it = keys_.find(key);
    REQUIRE(it != keys_.end());
    return spki_of(it->second.pkey.get());
}

Result<ipc::KeyInfo> SoftwareKeys::describe(const std::string& key) const {
    auto it = keys_.find(key);
    if (it == keys_.end()) return Status{ErrorCode::no_such_key, "no key named " + key};
    ipc::KeyInfo info;
    info.name = key;
    info.type = std::string(key_type_name(it->second.type));
    info.bits = key_type_bits(it->second.type);
    info.spki = spki_of(it->second.pkey.get());
    info.schemes = schemes_for(it->second.type, false);
    return info;
}

// What a token does: the digest signed with the scheme's padding, refused when the scheme
// does not fit the key or the digest is not the scheme's size.
Result<std::vector<uint8_t>> SoftwareKeys::sign(const std::string& key, Scheme scheme,
                                                std::span<const uint8_t> digest) {
    auto it = keys_.find(key);
    if (it == keys_.end()) return Status{ErrorCode::no_such_key, "no key named " + key};
    const SchemeInfo* info = scheme_info(scheme);
    if (info == nullptr || !scheme_fits(it->second.type, *info, false))
        return Status{ErrorCode::unsupported_scheme, "key " + key + " cannot sign with that scheme"};
    if (digest.size() != info->digest_size)
        return Status{ErrorCode::invalid_argument,
                      "a digest of " + std::to_string(digest.size()) + " bytes for " + std::string(info->name)};
    ossl::PKeyCtx ctx(EVP_PKEY_CTX_new(it->second.pkey.get(), nullptr));
    REQUIRE(ctx);
    REQUIRE(EVP_PKEY_sign_init(ctx.get()) == 1);
    if (info->family == SchemeFamily::rsa_pkcs1) {
        REQUIRE(EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) == 1);
        REQUIRE(EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_get_digestbyname(std::string(info->digest).c_str())) == 1);
    }
    size_t len = 0;
    REQUIRE(EVP_PKEY_sign(ctx.get(), nullptr, &len, digest.data(), digest.size()) == 1);
    std::vector<uint8_t> sig(len);
    REQUIRE(EVP_PKEY_sign(ctx.get(), sig.data(), &len, digest.data(), digest.size()) == 1);
    sig.resize(len);
    signatures.push_back({key, scheme});
    return sig;
}

Result<ipc::KeyInfo> SoftwareKeys::generate(const std::string& key, const std::string& type_name) {
    if (keys_.count(key) || orphans.count(key)) return Status{ErrorCode::key_exists, "a key named " + key + " exists"};
    const auto type = key_type_from_name(type_name);
    if (!type) return Status{ErrorCode::invalid_argument, "unknown key type " + type_name};
    if (before_generate)
        if (Status s = before_generate(key); !s.ok()) return s;
    keys_.emplace(key, Key{make_key(*type), *type});
    generated.push_back(key);
    return describe(key);
}

Status SoftwareKeys::destroy(const std::string& key) {
    if (keys_.erase(key) == 0) return {ErrorCode::no_such_key, "no key named " + key};
    destroyed.push_back(key);
    return {};
}

Status SoftwareKeys::remove_orphan(const std::string& key) {
    if (keys_.count(key)) return {ErrorCode::key_exists, "key " + key + " is in use"};
    if (orphans.erase(key) == 0) return {ErrorCode::no_such_key, "nothing named " + key};
    orphans_removed.push_back(key);
    return {};
}

// --- the CA -----------------------------------------------------------------------------

TestCa::TestCa(const FakeClock& clock) : clock_(clock), key_(make_key(KeyType::ec_p256)), cert_(X509_new()) {
    X509* c = cert_.get();
    REQUIRE(c);
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
    ASN1_TIME_set(X509_getm_notBefore(c), static_cast<time_t>(clock_.now() - 3600));
    ASN1_TIME_set(X509_getm_notAfter(c), static_cast<time_t>(clock_.now() + 10 * 365 * 86400));
    X509_NAME* name = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("Lifecycle Test CA"),
                               -1, -1, 0);
    X509_set_issuer_name(c, name);
    X509_set_pubkey(c, key_.get());
    add_extension(c, c, NID_basic_constraints, "critical,CA:TRUE");
    add_extension(c, c, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_extension(c, c, NID_subject_key_identifier, "hash");
    REQUIRE(X509_sign(c, key_.get(), EVP_sha256()) > 0);
    anchors_ = dir_.path() + "/ca.pem";
    REQUIRE(files::write_new(anchors_, cert_pem(), 0644).ok());
}

std::string TestCa::cert_pem() const { return pki::to_pem(cert_.get()); }

IssuerKind TestCa::issuer_kind() {
    IssuerKind kind;
    kind.name = "test";
    kind.check = [](const toml::table&, const std::string&, const std::string&) { return Status{}; };
    kind.make = [this](const toml::table&, const std::string&) -> std::unique_ptr<Issuer> {
        return std::make_unique<ScriptedIssuer>(*this);
    };
    return kind;
}

Result<std::string> TestCa::issue(const std::string& csr_pem, int64_t lifetime) const {
    ossl::Bio in(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())));
    ossl::Req req(PEM_read_bio_X509_REQ(in.get(), nullptr, nullptr, nullptr));
    if (!req) return Status{ErrorCode::invalid_argument, "the test CA got no PKCS#10 request"};
    EVP_PKEY* requested = X509_REQ_get0_pubkey(req.get());
    if (requested == nullptr || X509_REQ_verify(req.get(), requested) != 1)
        return Status{ErrorCode::invalid_argument, "the request's signature does not verify with its key"};

    ossl::Cert cert(X509_new());
    X509* c = cert.get();
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), ++serial_);
    ASN1_TIME_set(X509_getm_notBefore(c), static_cast<time_t>(clock_.now() - 60));
    ASN1_TIME_set(X509_getm_notAfter(c), static_cast<time_t>(clock_.now() + lifetime));
    X509_set_subject_name(c, X509_REQ_get_subject_name(req.get()));
    X509_set_issuer_name(c, X509_get_subject_name(cert_.get()));
    X509_set_pubkey(c, requested);
    add_extension(c, cert_.get(), NID_basic_constraints, "critical,CA:FALSE");
    add_extension(c, cert_.get(), NID_key_usage, "critical,digitalSignature");
    add_extension(c, cert_.get(), NID_ext_key_usage, "clientAuth");
    ossl::Extensions requested_exts(X509_REQ_get_extensions(req.get()));
    for (int i = 0; requested_exts && i < sk_X509_EXTENSION_num(requested_exts.get()); ++i) {
        X509_EXTENSION* ext = sk_X509_EXTENSION_value(requested_exts.get(), i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) == NID_subject_alt_name) X509_add_ext(c, ext, -1);
    }
    REQUIRE(X509_sign(c, key_.get(), EVP_sha256()) > 0);
    return pki::to_pem(c);
}

IssueResult TestCa::answer(const Call& call) {
    calls.push_back(call);
    if (on_call) on_call(call);
    const Answer next = script.empty() ? Answer::issue : script.front();
    if (!script.empty()) script.pop_front();
    IssueResult r;
    switch (next) {
        case Answer::issue:
        case Answer::wrong_key: {
            auto cert = issue(next == Answer::issue ? call.csr_pem : request_for_another_key(call.csr_pem));
            if (!cert.ok()) {
                r.kind = IssueResult::Kind::rejected;
                r.message = cert.status().message;
                break;
            }
            r.kind = IssueResult::Kind::issued;
            r.cert_pem = cert.value();
            r.message = "issued";
            break;
        }
        case Answer::reject:
            r.kind = IssueResult::Kind::rejected;
            r.message = "the test CA rejected the request";
            break;
        case Answer::pending:
            r.kind = IssueResult::Kind::pending;
            r.cookie = pending_cookie;
            r.retry_after = std::chrono::seconds(pending_retry_after);
            r.message = "the test CA asked to wait";
            break;
        case Answer::garbage:
            r.kind = IssueResult::Kind::issued;
            r.cert_pem = "this is not a certificate\n";
            r.message = "issued";
            break;
        case Answer::unreachable:
            r.kind = IssueResult::Kind::unreachable;
            r.message = "the test CA is down";
            break;
    }
    return r;
}

// --- the rig ----------------------------------------------------------------------------

LifecycleRig::LifecycleRig(std::string extra) : state_dir(dir.path() + "/state"), extra_config(std::move(extra)) {
    REQUIRE(files::make_dirs(state_dir, 0700).ok());
}

std::unique_ptr<Lifecycle> LifecycleRig::start() {
    const std::string text =
        "[identities.web]\n"
        "subject = \"/CN=web.example\"\n"
        "sans = [\"dns:web.example\"]\n"
        "trust_anchors = \"" +
        ca.anchors_file() +
        "\"\n"
        "jitter = \"0s\"\n"
        "grace_period = \"" +
        std::to_string(kGracePeriod) + "s\"\n" + extra_config +
        "[identities.web.issuer]\n"
        "kind = \"test\"\n";
    toml::table doc = toml::parse(text, std::string("test.toml"));
    const toml::table* section = doc["identities"].as_table();
    REQUIRE(section);
    const IssuerKinds kinds = {ca.issuer_kind()};
    auto ids = parse_identities(*section, "test.toml", kinds);
    INFO(ids.status().message);
    REQUIRE(ids.ok());
    return make_lifecycle(std::move(ids.value()), keys.access(), state_dir, kinds, clock.clock());
}

std::string LifecycleRig::current_file(const std::string& name) const {
    auto text = files::read_file(identity_dir() + "/current/" + name);
    INFO(text.status().message);
    REQUIRE(text.ok());
    return text.value();
}

void LifecycleRig::snapshot() {
    const std::string kept = dir.path() + "/snapshot";
    fs::remove_all(kept);
    fs::copy(state_dir, kept, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
}

void LifecycleRig::restore() {
    fs::remove_all(state_dir);
    fs::copy(dir.path() + "/snapshot", state_dir, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
}

std::vector<uint8_t> csr_spki(const std::string& csr_pem) {
    ossl::Bio in(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())));
    ossl::Req req(PEM_read_bio_X509_REQ(in.get(), nullptr, nullptr, nullptr));
    REQUIRE(req);
    return spki_of(X509_REQ_get0_pubkey(req.get()));
}

nlohmann::json json_of(const Result<std::string>& answer) {
    INFO(answer.status().message);
    REQUIRE(answer.ok());
    return nlohmann::json::parse(answer.value());
}

nlohmann::json renew(Lifecycle& lifecycle, bool now, bool rekey) {
    return json_of(lifecycle.renew(RenewRequest{"web", now, rekey}));
}

nlohmann::json show(Lifecycle& lifecycle) { return json_of(lifecycle.show_json("web")); }

std::vector<std::string> keys_to_destroy(const nlohmann::json& view) {
    std::vector<std::string> out;
    for (const auto& d : view["keys_to_destroy"]) out.push_back(d["key"].get<std::string>());
    return out;
}

std::string require_consistent(const LifecycleRig& rig) {
    const std::string current = rig.identity_dir() + "/current/";
    auto meta = files::read_file(current + "meta.json");
    REQUIRE(meta.ok());
    const std::string key = nlohmann::json::parse(meta.value()).at("key").get<std::string>();
    INFO("the key in force: " << key);
    REQUIRE(rig.keys.has(key));

    auto keyref_pem = files::read_file(current + "key.ref");
    REQUIRE(keyref_pem.ok());
    auto keyref = decode_key_reference_pem(keyref_pem.value());
    REQUIRE(keyref.ok());
    CHECK(keyref->name == key);
    CHECK(keyref->spki == rig.keys.spki(key));

    auto cert = files::read_file(current + "cert.pem");
    auto chain = files::read_file(current + "chain.pem");
    auto fullchain = files::read_file(current + "fullchain.pem");
    REQUIRE((cert.ok() && chain.ok() && fullchain.ok()));
    CHECK(fullchain.value() == cert.value() + chain.value());

    pki::Expectations expect;
    expect.trust_anchors = rig.ca.anchors_file();
    expect.spki = rig.keys.spki(key);
    expect.require_client_auth = true;
    auto san = pki::parse_san("dns:web.example");
    REQUIRE(san.ok());
    expect.sans = {san.value()};
    expect.now = rig.clock.now();
    auto valid = pki::validate_issued(cert.value(), chain.value(), expect);
    INFO(valid.status().message);
    CHECK(valid.ok());
    return key;
}

}  // namespace keyward::lifecycle::testing
