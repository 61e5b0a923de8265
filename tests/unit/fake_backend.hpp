// A KeyBackend over in-process OpenSSL keys, for unit tests of the agent's plumbing only.
// Every test that claims a device feature works uses a real device instead.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "core/key_backend.hpp"

namespace keyward::testing {

class FakeBackend : public KeyBackend {
public:
    explicit FakeBackend(std::chrono::milliseconds delay = {}, size_t concurrency = 1)
            : delay_(delay), concurrency_(concurrency) {}
    ~FakeBackend() override {
        for (auto& [name, key] : keys_) EVP_PKEY_free(key);
    }

    std::string_view kind() const noexcept override { return "fake"; }
    std::string description() const override { return "in-memory test keys"; }
    size_t max_concurrency() const noexcept override { return concurrency_; }
    DeviceHealth health() override { return DeviceHealth::present; }

    Result<std::vector<BackendKey>> list_keys() override {
        std::lock_guard lock(mu_);
        std::vector<BackendKey> out;
        for (auto& [name, key] : keys_) out.push_back(describe_locked(name, key));
        return out;
    }
    Result<BackendKey> describe(const std::string& label) override {
        std::lock_guard lock(mu_);
        auto it = keys_.find(label);
        if (it == keys_.end()) return Status{ErrorCode::no_such_key, "no such key " + label};
        return describe_locked(label, it->second);
    }
    Result<BackendKey> generate(const std::string& label, KeyType type) override {
        if (type != KeyType::ec_p256) return Status{ErrorCode::invalid_argument, "fake: ec-p256 only"};
        std::lock_guard lock(mu_);
        if (keys_.count(label)) return Status{ErrorCode::key_exists, label};
        EVP_PKEY* key = EVP_EC_gen("P-256");
        keys_[label] = key;
        return describe_locked(label, key);
    }
    Status destroy(const std::string& label) override {
        std::lock_guard lock(mu_);
        auto it = keys_.find(label);
        if (it == keys_.end()) return {ErrorCode::no_such_key, label};
        EVP_PKEY_free(it->second);
        keys_.erase(it);
        return {};
    }
    Result<std::vector<uint8_t>> sign(const std::string& label, ipc::Scheme, std::span<const uint8_t> digest) override {
        std::this_thread::sleep_for(delay_);
        std::lock_guard lock(mu_);
        sign_threads_.push_back(std::this_thread::get_id());
        auto it = keys_.find(label);
        if (it == keys_.end()) return Status{ErrorCode::no_such_key, label};
        EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(it->second, nullptr);
        size_t len = 0;
        std::vector<uint8_t> sig;
        if (EVP_PKEY_sign_init(ctx) == 1 && EVP_PKEY_sign(ctx, nullptr, &len, digest.data(), digest.size()) == 1) {
            sig.resize(len);
            if (EVP_PKEY_sign(ctx, sig.data(), &len, digest.data(), digest.size()) == 1) sig.resize(len);
            else sig.clear();
        }
        EVP_PKEY_CTX_free(ctx);
        if (sig.empty()) return Status{ErrorCode::device_error, "fake sign failed"};
        return sig;
    }

    // The thread of every sign() call so far, in order.
    std::vector<std::thread::id> sign_threads() {
        std::lock_guard lock(mu_);
        return sign_threads_;
    }

private:
    BackendKey describe_locked(const std::string& name, EVP_PKEY* key) {
        BackendKey k;
        k.label = name;
        k.type = KeyType::ec_p256;
        int len = i2d_PUBKEY(key, nullptr);
        k.spki.resize(static_cast<size_t>(len));
        unsigned char* p = k.spki.data();
        i2d_PUBKEY(key, &p);
        k.schemes = {ipc::Scheme::ecdsa_secp256r1_sha256};
        return k;
    }

    std::chrono::milliseconds delay_;
    size_t concurrency_;
    std::vector<std::thread::id> sign_threads_;
    std::mutex mu_;
    std::map<std::string, EVP_PKEY*> keys_;
};

}  // namespace keyward::testing
