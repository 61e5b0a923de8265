#include "agent/key_registry.hpp"
#include "agent/credentials.hpp"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>

#include "core/log.hpp"
#include "pkcs11/card_deadline.hpp"
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
                // Looks at the card now (serial, PIN state, login), so status tells at once and
                // keys not found before appear — as a job on the token's executor: the backend
                // makes one device call at a time per session share, not one more beside it.
                // Before the token is open, open_token itself looks.
                if (t->opened.load(std::memory_order_acquire) && !queue_card_look(*t, false))
                    log::warning("token " + t->name + ": the card in reader " + ev.reader +
                                 " is looked at with the next request (the token's queue is full)");
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

// A card's device calls with a deadline (pkcs11/card_deadline.hpp): a card that stops
// answering makes the token `error` at once, and a look at it follows its answer.
std::unique_ptr<KeyBackend> with_deadline(Token& token, std::unique_ptr<KeyBackend> backend) {
    pkcs11::CardDeadline deadline;
    deadline.card =
        token.config.reader.empty() ? "the card of token " + token.name : "the card in reader " + token.config.reader;
    deadline.timeout = std::chrono::seconds(token.config.card_timeout_seconds);
    Token* t = &token;  // called on the thread of a call into the token's backend: the token is there
    deadline.on_stuck = [t]() { t->health = DeviceHealth::error; };
    // On the card's own thread, which a stuck call may keep after the token is gone.
    deadline.on_answering = [weak = token.weak_from_this()]() {
        if (auto t = weak.lock()) queue_card_look(*t, false);
    };
    return pkcs11::with_card_deadline(std::move(backend), std::move(deadline));
}

int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace

bool queue_card_look(Token& token, bool asked) {
    if (!token.opened.load(std::memory_order_acquire)) return false;
    if (asked) {
        const int64_t now = steady_ms();
        int64_t last = token.last_asked_look_ms.load();
        if (now - last < 1000 || !token.last_asked_look_ms.compare_exchange_strong(last, now)) return true;
    }
    if (token.look_queued.exchange(true)) return true;  // the queued one sees this change too
    Token* t = &token;  // the executor is joined in ~Token, before anything the job touches goes
    const bool queued = token.executor->try_submit(
        [t]() {
            t->look_queued.store(false);
            DeviceHealth h = t->backend->health();
            // The monitor may have seen the card go while we looked: its word is the newer one.
            if (t->presence) {
                const auto now = t->presence->view().state;
                if (now == pkcs11::CardPresence::State::removed) h = DeviceHealth::removed;
                if (now == pkcs11::CardPresence::State::unreachable) h = DeviceHealth::error;
            }
            t->health = h;
            log::info("token " + t->name +
                      ": looked at the card on the token's executor: " + std::string(device_health_name(h)));
            if (h != DeviceHealth::present) return;
            if (auto hook = t->found_hook()) hook(*t);
        },
        Executor::kAgentWork);
    if (!queued) token.look_queued.store(false);
    return queued;
}

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
        if (config.card) token->backend = with_deadline(*token, std::move(token->backend));
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
    std::map<std::string, std::shared_ptr<Token>, std::less<>> pending;
    for (const auto& token : tokens) {
        if (!token->config.card) continue;
        for (const auto& [name, object] : token->config.adopted) {
            if (keys.count(name)) continue;
            log::notice("token " + token->name + ": key " + name + " (" + object +
                        ") is not readable now; it is added when the card is in and its PIN accepted");
            pending.emplace(name, token);
        }
    }
    const std::weak_ptr<KeyRegistry> self = weak_from_this();
    for (const auto& token : tokens)
        if (token->config.card)
            token->set_found_hook([self](Token& t) {
                if (auto registry = self.lock()) registry->add_found_keys(t);
            });
    std::unique_lock lock(mu_);
    tokens_ = std::move(tokens);
    default_token_ = std::move(default_token);
    keys_ = std::move(keys);
    pending_ = std::move(pending);
}

void KeyRegistry::add_found_keys(Token& token) {
    {
        std::shared_lock lock(mu_);
        if (std::none_of(pending_.begin(), pending_.end(), [&](const auto& p) { return p.second.get() == &token; }))
            return;
    }
    // Device work, on the token's executor and outside the lock.
    auto listed = token.backend->list_keys();
    if (!listed.ok()) {
        log::info("token " + token.name + ": keys not readable yet: " + listed.status().message);
        return;
    }
    std::vector<std::string> added, taken;
    {
        std::unique_lock lock(mu_);
        for (const auto& key : listed.value()) {
            auto p = pending_.find(key.label);
            if (p == pending_.end() || p->second.get() != &token) continue;  // a reload replaced the token
            if (keys_.try_emplace(key.label, std::make_shared<const KeyEntry>(p->second, to_key_info(key, token.name)))
                    .second)
                added.push_back(key.label);
            else taken.push_back(key.label);
            pending_.erase(p);
        }
    }
    for (const auto& name : added)
        log::info("token " + token.name + ": key " + name + " found on the card; usable now");
    for (const auto& name : taken)
        log::warning("token " + token.name + ": key " + name + " found on the card, but the name is taken since");
}

void KeyRegistry::ask_for_looks(const std::vector<std::shared_ptr<Token>>& tokens) const {
    for (const auto& t : tokens) queue_card_look(*t, true);
}

std::shared_ptr<const KeyEntry> KeyRegistry::find(const std::string& name) const {
    std::shared_ptr<Token> waiting;
    {
        std::shared_lock lock(mu_);
        auto it = keys_.find(name);
        if (it != keys_.end()) return it->second;
        auto p = pending_.find(name);
        if (p == pending_.end()) return nullptr;
        waiting = p->second;
    }
    // A configured card key not found yet: this answer cannot wait for the card, a later one finds it.
    ask_for_looks({waiting});
    return nullptr;
}

std::vector<ipc::KeyInfo> KeyRegistry::keys() const {
    std::vector<ipc::KeyInfo> out;
    std::vector<std::shared_ptr<Token>> waiting;
    {
        std::shared_lock lock(mu_);
        out.reserve(keys_.size());
        for (const auto& [name, entry] : keys_) out.push_back(entry->info);
        for (const auto& [name, token] : pending_)
            if (std::find(waiting.begin(), waiting.end(), token) == waiting.end()) waiting.push_back(token);
    }
    ask_for_looks(waiting);
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
