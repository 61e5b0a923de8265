// Test doubles for the lifecycle's unit tests: a device of software keys behind KeyAccess,
// an in-process CA behind an issuer kind of its own whose answers a test scripts, a clock
// that moves only when told, scratch directories, and `LifecycleRig`, which puts them
// together around one identity "web". Nothing here talks to a real device or CA: the
// integration tests (test_helper.py, test_acme.py, test_cmp.py) do that.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/lifecycle/issuer.hpp"
#include "agent/lifecycle/key_access.hpp"
#include "agent/lifecycle/lifecycle.hpp"
#include "core/key_types.hpp"
#include "core/ossl.hpp"
#include "core/schemes.hpp"

namespace keyward::lifecycle::testing {

// OpenSSL pieces for tests that make keys and certificates themselves.
ossl::PKey make_key(KeyType type);            // generated in-process
std::vector<uint8_t> spki_of(EVP_PKEY* key);  // SubjectPublicKeyInfo DER
// Adds an extension given in OpenSSL's configuration syntax ("critical,CA:TRUE").
void add_extension(X509* cert, X509* issuer, int nid, const char* value);

// A directory under /tmp, removed with everything in it when the object goes.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
};

// Unix time for the lifecycle and the CA: starts at the real time, moves by advance() only.
class FakeClock {
public:
    FakeClock();
    int64_t now() const noexcept { return now_; }
    void advance(int64_t seconds) noexcept { now_ += seconds; }
    Clock clock() {
        return [this] { return now_; };
    }

private:
    int64_t now_;
};

// The agent's devices as the lifecycle sees them, made of EVP_PKEYs generated in-process.
// It outlives the lifecycles of a test, as a token outlives a crashed agent.
class SoftwareKeys {
public:
    KeyAccess access();

    bool has(const std::string& key) const { return keys_.count(key) != 0; }
    std::vector<std::string> names() const;
    std::vector<uint8_t> spki(const std::string& key) const;

    // Called before a key is made; a non-OK Status is the device's answer instead (the key
    // is then not made), e.g. to stop an attempt right there.
    std::function<Status(const std::string& key)> before_generate;

    struct Signature {
        std::string key;
        Scheme scheme;
    };
    std::vector<Signature> signatures;   // every signature made, in order
    std::vector<std::string> generated;  // every key made, in order
    std::vector<std::string> destroyed;  // every key destroyed, in order
    // Objects on the device that are not keys the agent lists (a public half left by a
    // generation cut short): they block their name for generate until removed.
    std::set<std::string> orphans;
    std::vector<std::string> orphans_removed;  // every orphan removed, in order

private:
    struct Key {
        ossl::PKey pkey;
        KeyType type;
    };
    Result<ipc::KeyInfo> describe(const std::string& key) const;
    Result<std::vector<uint8_t>> sign(const std::string& key, Scheme scheme, std::span<const uint8_t> digest);
    Result<ipc::KeyInfo> generate(const std::string& key, const std::string& type);
    Status destroy(const std::string& key);
    Status remove_orphan(const std::string& key);

    std::map<std::string, Key> keys_;
};

// A CA in the test process: EC P-256, self-signed, its certificate in a file for
// `trust_anchors`. Its issuer (issuer_kind()) answers each request with the next scripted
// answer, or issues when none is left.
class TestCa {
public:
    enum class Answer {
        issue,        // a certificate for the CSR's key, subject and SANs, with clientAuth
        reject,       // the CA said no
        pending,      // wait: `pending_cookie`, `pending_retry_after`
        garbage,      // "issued", but no certificate in it
        wrong_key,    // "issued", a good certificate for a key that is not the CSR's
        unreachable,  // no answer
    };

    struct Call {
        std::string operation;  // "submit" or "poll"
        std::string key;
        std::string csr_pem;
        std::string cookie;
        std::string current_cert_pem;
        std::string current_key;
    };

    explicit TestCa(const FakeClock& clock);
    TestCa(const TestCa&) = delete;
    TestCa& operator=(const TestCa&) = delete;

    // The issuer kind "test", for parse_identities() and make_lifecycle().
    IssuerKind issuer_kind();
    const std::string& anchors_file() const { return anchors_; }
    std::string cert_pem() const;

    // A certificate for the key in `csr_pem`, after checking the request's own signature;
    // valid from a minute before the clock's time for `lifetime` seconds.
    Result<std::string> issue(const std::string& csr_pem, int64_t lifetime = 30 * 86400) const;

    std::deque<Answer> script;  // answers still to give, first first
    std::string pending_cookie = "ticket-1";
    int64_t pending_retry_after = 300;
    // Called with each request before it is answered, e.g. to copy the disk as a crash
    // during the CA's work would leave it.
    std::function<void(const Call&)> on_call;
    std::vector<Call> calls;  // every request, in order

    // What the CA's issuer answers (after recording the call and calling on_call).
    IssueResult answer(const Call& call);

private:
    const FakeClock& clock_;
    TempDir dir_;
    std::string anchors_;
    ossl::PKey key_;
    ossl::Cert cert_;
    mutable long serial_ = 1000;
};

constexpr int64_t kGracePeriod = 3600;  // the rig identity's grace_period

// One identity "web" (subject /CN=web.example, SAN dns:web.example, the test CA's issuer,
// no jitter, grace period kGracePeriod) with its state under a scratch directory, a device and a CA.
// start() is the agent starting (again) over the same disk and device.
struct LifecycleRig {
    explicit LifecycleRig(std::string extra_config = "");

    std::unique_ptr<Lifecycle> start();
    std::string identity_dir() const { return state_dir + "/identities/web"; }
    // A file of the generation in force ("cert.pem", "meta.json", ...).
    std::string current_file(const std::string& name) const;

    // The disk as it is now, kept aside; restore() puts it back (what a crash at the
    // moment of the snapshot leaves behind). The device is not part of it.
    void snapshot();
    void restore();

    TempDir dir;
    std::string state_dir;
    FakeClock clock;
    SoftwareKeys keys;
    TestCa ca{clock};
    std::string extra_config;  // more lines for [identities.web]
};

// The public key (SubjectPublicKeyInfo DER) a PKCS#10 request is for.
std::vector<uint8_t> csr_spki(const std::string& csr_pem);

// The JSON document of a view or a renew answer (REQUIREs that the call succeeded).
nlohmann::json json_of(const Result<std::string>& answer);
nlohmann::json renew(Lifecycle& lifecycle, bool now = false, bool rekey = false);
nlohmann::json show(Lifecycle& lifecycle);
// The names in a view's keys_to_destroy.
std::vector<std::string> keys_to_destroy(const nlohmann::json& view);

// The identity in force is whole: current/ holds a certificate that validates (test CA,
// clientAuth, dns:web.example) for the public key of the device key named by meta.json and
// by key.ref, and fullchain.pem is cert.pem + chain.pem. Answers that key's name.
std::string require_consistent(const LifecycleRig& rig);

}  // namespace keyward::lifecycle::testing
