// The tokens the agent serves and the keys found on them, by name. The event loop reads
// it for every request; device work (generate, delete) updates it from executor threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
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
    // A look at a card (its health, then the keys not found yet) runs as a job on the token's
    // executor, never beside it: at most one is queued at a time.
    std::atomic<bool> look_queued{false};
    std::atomic<int64_t> last_asked_look_ms{0};  // steady clock: looks asked for by requests are spaced

    // Set by the registry that serves this token; run on the token's executor after a look
    // found the card usable, so that its configured keys not found before are added.
    void set_found_hook(std::function<void(Token&)> hook) {
        std::lock_guard lock(hook_mu_);
        found_hook_ = std::move(hook);
    }
    std::function<void(Token&)> found_hook() const {
        std::lock_guard lock(hook_mu_);
        return found_hook_;
    }

    ~Token() {
        monitor.reset();
        executor.reset();
    }

private:
    mutable std::mutex hook_mu_;
    std::function<void(Token&)> found_hook_;
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

// Queues a look at a card token on its executor: health (serial, PIN state, login), then the
// found hook. `asked` (a request named a key not found yet) spaces looks by a second, so a
// client polling for a missing key does not keep the card busy. False when no look can be
// queued (the token is not open yet, or its executor's queue is full).
bool queue_card_look(Token& token, bool asked);

// Held by a shared_ptr (a card token's look reaches it through a weak one).
class KeyRegistry : public std::enable_shared_from_this<KeyRegistry> {
public:
    // Replaces the token set; keys are re-read from every token. Tokens whose
    // configuration did not change are reused by the caller (see reuse_or_open).
    // A card token's configured keys that cannot be read now (no card, a rejected PIN) are
    // pending: added when a look at the card finds them — after the monitor saw the card
    // come, or when a request lists keys or names one of them.
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
    // On the token's executor: reads the token's keys and adds the pending ones it has.
    void add_found_keys(Token& token);
    void ask_for_looks(const std::vector<std::shared_ptr<Token>>& tokens) const;

    mutable std::shared_mutex mu_;
    std::vector<std::shared_ptr<Token>> tokens_;
    std::string default_token_;
    std::map<std::string, std::shared_ptr<const KeyEntry>, std::less<>> keys_;
    std::map<std::string, std::shared_ptr<Token>, std::less<>> pending_;  // key name → its card token
};

}  // namespace keyward::agent
