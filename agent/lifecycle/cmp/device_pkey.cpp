// The key object is core/legacy_key.hpp's; what is the lifecycle's own is that signing goes
// through KeyAccess (the key's token executor), only with the schemes the device offers,
// and that the device's reason for a failure is kept for the issuer.
#include "agent/lifecycle/cmp/device_pkey.hpp"

#include <openssl/err.h>

#include <algorithm>
#include <mutex>

#include "core/legacy_key.hpp"

namespace keyward::lifecycle {

namespace {

struct DeviceKey {
    KeyAccess keys;
    std::string name;
    std::vector<Scheme> schemes;
    std::mutex mu;
    Status last_error;

    void record(const Status& status) {
        std::lock_guard lock(mu);
        last_error = status;
    }
};

void raise(const std::string& message) { ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL, "%s", message.c_str()); }

// Signs through the agent; on failure the device's reason is kept and put on the error queue.
Result<std::vector<uint8_t>> device_sign(DeviceKey& key, Scheme scheme, std::span<const uint8_t> digest) {
    if (std::find(key.schemes.begin(), key.schemes.end(), scheme) == key.schemes.end()) {
        Status s{ErrorCode::unsupported_scheme,
                 "key " + key.name + " cannot sign " + std::string(scheme_info(scheme)->name)};
        key.record(s);
        raise(s.message);
        return s;
    }
    auto answer = key.keys.sign(key.name, scheme, digest);
    if (!answer.ok()) {
        key.record(answer.status());
        raise("key " + key.name + ": " + answer.status().message);
        return answer;
    }
    key.record(Status::success());
    return answer;
}

}  // namespace

Result<PkeyPtr> make_device_pkey(const KeyAccess& keys, const std::string& key_name) {
    auto info = keys.describe(key_name);
    if (!info.ok()) return info.status();
    auto key = std::make_shared<DeviceKey>();
    key->keys = keys;
    key->name = key_name;
    key->schemes = info->schemes;
    LegacySigner signer;
    signer.name = key_name;
    // The key object owns the DeviceKey; a raw pointer in the callback cannot dangle.
    signer.sign = [k = key.get()](Scheme scheme, std::span<const uint8_t> digest) {
        return device_sign(*k, scheme, digest);
    };
    signer.fail = [](const Status& status) { raise(status.message); };
    return make_legacy_pkey(info->spki, std::move(key), std::move(signer));
}

Status last_device_error(EVP_PKEY* pkey) {
    DeviceKey* key = legacy_key_owner<DeviceKey>(pkey);
    if (key == nullptr) return {};
    std::lock_guard lock(key->mu);
    return key->last_error;
}

}  // namespace keyward::lifecycle
