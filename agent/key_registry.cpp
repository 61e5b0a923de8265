#include "agent/key_registry.hpp"
#include "agent/credentials.hpp"

#include <chrono>
#include <mutex>
#include <thread>

#include "core/log.hpp"
#include "pkcs11/pkcs11_backend.hpp"
#include "tpm/tpm_backend.hpp"

namespace keyward::agent {
namespace {
// Enough to absorb a burst from many clients; beyond it the agent answers "busy".
constexpr size_t kMaxQueuedPerToken = 4096;
}  // namespace

ipc::KeyInfo to_key_info(const BackendKey& key, const std::string& token_name) {
    ipc::KeyInfo info;
    info.name = key.label;
    info.type = std::string(key_type_name(key.type));
    info.bits = key_type_bits(key.type);
    info.token = token_name;
    info.spki = key.spki;
    info.schemes = key.schemes;
    info.attributes = key.attributes;
    if (!key.certificate.empty()) info.certificates.push_back(key.certificate);
    return info;
}

namespace {

// The monitor's events for the token's reader go to its presence (which the backend reads)
// and its health (which status shows). Waits briefly for the first answer, so a card that
// is in the reader at start is known to be there before the backend opens.
void watch_reader(Token& token) {
    Token* t = &token;  // the monitor is stopped in ~Token, before anything it touches goes
    token.monitor = std::make_unique<pcsc::Monitor>([t](const pcsc::ReaderEvent& ev) {
        if (ev.reader != t->presence->reader()) return;
        switch (ev.state) {
            case pcsc::CardState::present:
                log::info("token " + t->name + ": a card is in reader " + ev.reader);
                t->presence->set_present();
                // Looks at the card now (serial, PIN state, login), so status tells at once.
                if (t->opened.load(std::memory_order_acquire)) t->health = t->backend->health();
                break;
            case pcsc::CardState::removed:
                log::notice("token " + t->name + ": the card in reader " + ev.reader + " was removed");
                t->presence->set_removed();
                t->health = DeviceHealth::removed;
                break;
            case pcsc::CardState::error:
                log::warning("token " + t->name + ": reader " + ev.reader + ": " + ev.detail);
                t->presence->set_unreachable(ev.detail);
                t->health = DeviceHealth::error;
                break;
        }
    });
    token.monitor->start();
    for (int i = 0; i < 40 && !token.monitor->reader(token.presence->reader()); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
}

}  // namespace

Result<std::shared_ptr<Token>> open_token(const TokenConfig& config) {
    auto token = std::make_shared<Token>();
    token->name = config.name;
    token->config = config;
    if (config.kind == "pkcs11") {
        auto pin_file = secret_file_path(config.pin_file, "token " + config.name + ": pin_file");
        if (!pin_file.ok()) return pin_file.status();
        pkcs11::Pkcs11Config pc{config.module, config.uri, pin_file.value(), config.sessions};
        pc.card = config.card;
        for (const auto& [name, object] : config.adopted) pc.adopted.push_back({name, object});
        if (config.card && !config.reader.empty()) {
            token->presence = std::make_shared<pkcs11::CardPresence>(config.reader);
            pc.presence = token->presence;
            watch_reader(*token);
        }
        auto backend = pkcs11::open_backend(pc);
        if (!backend.ok())
            return Status{backend.status().code, "token " + config.name + ": " + backend.status().message};
        token->backend = std::move(backend).value();
    } else if (config.kind == "tpm") {
        auto auth_file = secret_file_path(config.auth_file, "token " + config.name + ": auth_file");
        if (!auth_file.ok()) return auth_file.status();
        tpm::TpmConfig tc{config.tcti, config.key_dir, auth_file.value()};
        auto backend = tpm::open_backend(tc);
        if (!backend.ok())
            return Status{backend.status().code, "token " + config.name + ": " + backend.status().message};
        token->backend = std::move(backend).value();
    } else {
        return Status{ErrorCode::invalid_argument, "token " + config.name + ": unsupported kind " + config.kind};
    }
    token->health = token->backend->health();
    token->executor =
        std::make_unique<Executor>("token " + config.name, token->backend->max_concurrency(), kMaxQueuedPerToken);
    token->opened.store(true, std::memory_order_release);
    return token;
}

void KeyRegistry::reset(std::vector<std::shared_ptr<Token>> tokens, std::string default_token) {
    std::map<std::string, std::shared_ptr<const KeyEntry>, std::less<>> keys;
    for (const auto& token : tokens) {
        auto listed = token->backend->list_keys();
        if (!listed.ok()) {
            log::warning("token " + token->name + ": cannot list keys: " + listed.status().message);
            continue;
        }
        for (const auto& key : listed.value()) {
            if (!is_valid_key_name(key.label)) {
                log::notice("token " + token->name + ": ignoring key with unusable name '" + key.label + "'");
                continue;
            }
            auto [it, inserted] =
                keys.try_emplace(key.label, std::make_shared<const KeyEntry>(token, to_key_info(key, token->name)));
            if (!inserted)
                log::warning("key " + key.label + " exists on tokens " + it->second->token->name + " and " +
                             token->name + "; using the one on " + it->second->token->name);
        }
    }
    std::unique_lock lock(mu_);
    tokens_ = std::move(tokens);
    default_token_ = std::move(default_token);
    keys_ = std::move(keys);
}

std::shared_ptr<const KeyEntry> KeyRegistry::find(const std::string& name) const {
    std::shared_lock lock(mu_);
    auto it = keys_.find(name);
    if (it == keys_.end()) return nullptr;
    return it->second;
}

std::vector<ipc::KeyInfo> KeyRegistry::keys() const {
    std::shared_lock lock(mu_);
    std::vector<ipc::KeyInfo> out;
    out.reserve(keys_.size());
    for (const auto& [name, entry] : keys_) out.push_back(entry->info);
    return out;
}

std::vector<std::shared_ptr<Token>> KeyRegistry::tokens() const {
    std::shared_lock lock(mu_);
    return tokens_;
}

std::shared_ptr<Token> KeyRegistry::token(const std::string& name) const {
    std::shared_lock lock(mu_);
    const std::string& wanted = name.empty() ? default_token_ : name;
    for (const auto& t : tokens_)
        if (t->name == wanted) return t;
    if (name.empty() && !tokens_.empty()) return tokens_.front();
    return nullptr;
}

size_t KeyRegistry::key_count() const {
    std::shared_lock lock(mu_);
    return keys_.size();
}

Result<std::shared_ptr<Token>> KeyRegistry::target_for_new_key(const std::string& name,
                                                               const std::string& token_name) const {
    if (!is_valid_key_name(name))
        return Status{ErrorCode::invalid_argument,
                      "invalid key name '" + name + "': use letters, digits, '.', '_', '-' (at most 64)"};
    if (find(name)) return Status{ErrorCode::key_exists, "a key named " + name + " already exists"};
    auto t = token(token_name);
    if (!t)
        return Status{ErrorCode::no_such_token,
                      token_name.empty() ? "no token is configured" : "no such token: " + token_name};
    return t;
}

bool KeyRegistry::add(const std::shared_ptr<Token>& token, ipc::KeyInfo info) {
    std::unique_lock lock(mu_);
    std::string name = info.name;
    return keys_.try_emplace(std::move(name), std::make_shared<const KeyEntry>(token, std::move(info))).second;
}

void KeyRegistry::remove(const std::string& name) {
    std::unique_lock lock(mu_);
    keys_.erase(name);
}

}  // namespace keyward::agent
