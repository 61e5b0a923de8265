// In-process ESAPI on a TPM: keyward's own TPM backend (tpm/) linked into this process,
// signing with a key blob the agent created. Compared with the same key through keywardd
// it isolates what the agent adds; the device (swtpm) and the ESAPI calls are the same.
#include <memory>
#include <mutex>

#include "bench/signers.hpp"
#include "tpm/tpm_backend.hpp"

namespace keyward::bench {
namespace {

class TpmThreadSigner : public ThreadSigner {
public:
    TpmThreadSigner(KeyBackend* backend, std::string key) : backend_(backend), key_(std::move(key)) {}

    bool sign_once(std::string& error) override {
        auto r = backend_->sign(key_, keyward::Scheme::ecdsa_secp256r1_sha256,
                                std::span<const uint8_t>(kDigest, sizeof kDigest));
        if (!r.ok()) {
            error = "tpm sign: " + r.status().message;
            return false;
        }
        return true;
    }

private:
    KeyBackend* backend_;
    std::string key_;
};

class TpmSigner : public Signer {
public:
    bool setup(const Options& o, std::string& error) {
        key_ = o.get("key");
        tpm::TpmConfig config{o.get("tcti"), o.get("key-dir"), o.get("auth-file")};
        if (key_.empty() || config.tcti.empty() || config.key_dir.empty()) {
            error = "tpm needs --tcti, --key-dir and --key";
            return false;
        }
        auto backend = tpm::open_backend(config);
        if (!backend.ok()) {
            error = backend.status().message;
            return false;
        }
        backend_ = std::move(backend).value();
        return true;
    }

    std::unique_ptr<ThreadSigner> for_thread(std::string&) override {
        return std::make_unique<TpmThreadSigner>(backend_.get(), key_);  // the backend serialises
    }

private:
    std::unique_ptr<KeyBackend> backend_;
    std::string key_;
};

}  // namespace

std::unique_ptr<Signer> make_tpm_signer(const Options& o, KeyKind kind, std::string& error) {
    if (kind != KeyKind::ec_p256) {
        error = "the tpm mode measures ec-p256 only";
        return nullptr;
    }
    auto s = std::make_unique<TpmSigner>();
    if (!s->setup(o, error)) return nullptr;
    return s;
}

}  // namespace keyward::bench
