// The tokens the agent serves and the keys found on them, by name. The event loop reads
// it for every request; device work (generate, delete) updates it from executor threads.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "agent/config.hpp"
#include "agent/executor.hpp"
#include "core/key_backend.hpp"
#include "ipc/protocol.hpp"
#include "pcsc/monitor.hpp"
#include "pkcs11/card_presence.hpp"

namespace keyward::agent {

struct Token : std::enable_shared_from_this<Token> {
    std::string name;
    TokenConfig config;
    std::unique_ptr<KeyBackend> backend;
    std::unique_ptr<Executor> executor;  // declared after backend: joined before the backend goes
    std::atomic<DeviceHealth> health{DeviceHealth::present};
    // A card token's reader watch (docs/smartcard.md): the monitor feeds `presence`, which
    // the backend reads. Stopped before the backend goes.
    std::shared_ptr<pkcs11::CardPresence> presence;
    std::unique_ptr<pcsc::Monitor> monitor;
    std::atomic<bool> opened{false};  // backend and executor are set (the monitor may look)

    ~Token() {
        monitor.reset();
        executor.reset();
    }
};

struct KeyEntry {
    std::shared_ptr<Token> token;
    ipc::KeyInfo info;
    // A running average of this key's signing time on the device, in µs (UINT32_MAX until
    // the first signature): the event loop signs on its own thread only with fast keys.
    // Apart from the entry because sign jobs update it and must not hold the token.
    std::shared_ptr<std::atomic<uint32_t>> sign_micros = std::make_shared<std::atomic<uint32_t>>(UINT32_MAX);
};

ipc::KeyInfo to_key_info(const BackendKey& key, const std::string& token_name);

// Opens a token (its backend and executor) from its configuration.
Result<std::shared_ptr<Token>> open_token(const TokenConfig& config);

class KeyRegistry {
public:
    // Replaces the token set; keys are re-read from every token. Tokens whose
    // configuration did not change are reused by the caller (see reuse_or_open).
    void reset(std::vector<std::shared_ptr<Token>> tokens, std::string default_token);

    // Shared, immutable entries: the sign path looks keys up without copying them.
    std::shared_ptr<const KeyEntry> find(const std::string& name) const;
    std::vector<ipc::KeyInfo> keys() const;
    std::vector<std::shared_ptr<Token>> tokens() const;
    std::shared_ptr<Token> token(const std::string& name) const;  // empty name: the default token
    size_t key_count() const;
    // The token a new key named `name` goes to, after the checks every new key passes
    // (usable name, not taken, token known), whoever asks for it.
    Result<std::shared_ptr<Token>> target_for_new_key(const std::string& name, const std::string& token_name) const;

    // After device work: false if the name is already taken.
    bool add(const std::shared_ptr<Token>& token, ipc::KeyInfo info);
    void remove(const std::string& name);

private:
    mutable std::shared_mutex mu_;
    std::vector<std::shared_ptr<Token>> tokens_;
    std::string default_token_;
    std::map<std::string, std::shared_ptr<const KeyEntry>, std::less<>> keys_;
};

}  // namespace keyward::agent
