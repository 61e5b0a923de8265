// Pkcs11Backend: the KeyBackend over one token of one PKCS#11 module.
#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "pkcs11/ckr_names.hpp"
#include "pkcs11/encoding.hpp"
#include "pkcs11/module.hpp"
#include "pkcs11/objects.hpp"
#include "pkcs11/pin_file.hpp"
#include "pkcs11/pkcs11_backend.hpp"
#include "pkcs11/session_pool.hpp"
#include "pkcs11/uri.hpp"
#include "core/hex.hpp"
#include "core/log.hpp"

namespace keyward::pkcs11 {
namespace {

constexpr size_t kKeyIdSize = 16;
constexpr size_t kMaxKeysListed = 4096;

// Lost sessions, a lost login, a device that went away and came back: worth one reopen.
bool is_recoverable(CK_RV rv) noexcept {
    switch (rv) {
        case CKR_SESSION_HANDLE_INVALID:
        case CKR_SESSION_CLOSED:
        case CKR_USER_NOT_LOGGED_IN:
        case CKR_DEVICE_REMOVED:
        case CKR_TOKEN_NOT_PRESENT:
        case CKR_DEVICE_ERROR:
        case CKR_OBJECT_HANDLE_INVALID:
        case CKR_KEY_HANDLE_INVALID:
        case CKR_SLOT_ID_INVALID: return true;
        default: return false;
    }
}

bool is_pin_rejection(CK_RV rv) noexcept {
    return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_EXPIRED || rv == CKR_PIN_INVALID ||
           rv == CKR_PIN_LEN_RANGE;
}

ErrorCode code_for(CK_RV rv) noexcept {
    if (is_recoverable(rv) || is_pin_rejection(rv)) return ErrorCode::device_unavailable;
    switch (rv) {
        case CKR_MECHANISM_INVALID:
        case CKR_MECHANISM_PARAM_INVALID:
        case CKR_KEY_TYPE_INCONSISTENT:
        case CKR_KEY_FUNCTION_NOT_PERMITTED: return ErrorCode::unsupported_scheme;
        case CKR_DATA_LEN_RANGE:
        case CKR_DATA_INVALID: return ErrorCode::invalid_argument;
        default: return ErrorCode::device_error;
    }
}

struct HashParams {
    CK_MECHANISM_TYPE hash;
    CK_RSA_PKCS_MGF_TYPE mgf;
};

HashParams hash_params(size_t digest_size) noexcept {
    switch (digest_size) {
        case 48: return {CKM_SHA384, CKG_MGF1_SHA384};
        case 64: return {CKM_SHA512, CKG_MGF1_SHA512};
        default: return {CKM_SHA256, CKG_MGF1_SHA256};
    }
}

size_t ec_coordinate_size(KeyType t) noexcept { return t == KeyType::ec_p384 ? 48 : 32; }

struct CachedKey {
    CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE;
    KeyType type = KeyType::ec_p256;
    uint64_t generation = 0;
    bool always_authenticate = false;  // CKA_ALWAYS_AUTHENTICATE: a context-specific login per signature
};

struct Adoption {
    ObjectUri uri;
    std::string spec;  // as configured, for messages
};

class Pkcs11Backend final : public KeyBackend {
public:
    Pkcs11Backend(std::shared_ptr<Module> module, const Pkcs11Config& config, TokenUri uri, size_t sessions)
            : module_(std::move(module)),
              f_(module_->f()),
              config_(config),
              uri_(std::move(uri)),
              pin_(config.pin_file),
              pool_(f_, sessions) {}

    ~Pkcs11Backend() override {
        // Our sessions close with the pool; the login ends with the module's last session.
        if (config_.presence) config_.presence->on_change(nullptr);
    }

    // The first connection: token found (else fail), sessions opened, logged in (a rejected
    // PIN is not a failure here: health says needs_pin and the agent reports it).
    Status start(std::map<std::string, Adoption> adopted) {
        adopted_ = std::move(adopted);
        if (config_.presence) {
            // A removed card: sessions and login go at once (the next card must log in anew).
            config_.presence->on_change([this](const CardPresence::View& v) {
                if (v.state == CardPresence::State::present) return;
                std::lock_guard lock(recover_mu_);
                ready_.store(false);
                generation_.fetch_add(1);
                pool_.reset(std::nullopt);
                health_.store(v.state == CardPresence::State::removed ? DeviceHealth::removed : DeviceHealth::error);
            });
        }
        Status s = recover(std::nullopt);
        if (s.ok() || health_.load() == DeviceHealth::needs_pin || health_.load() == DeviceHealth::locked) return {};
        if (health_.load() == DeviceHealth::removed && config_.card) return {};
        if (health_.load() == DeviceHealth::removed) return Status{ErrorCode::no_such_token, s.message};
        return s;
    }

    std::string_view kind() const noexcept override { return "pkcs11"; }
    size_t max_concurrency() const noexcept override { return pool_.capacity(); }

    std::string description() const override {
        std::lock_guard lock(info_mu_);
        std::string d = card_problem_.empty() ? description_ : description_ + ": " + card_problem_;
        return pin_note_.empty() ? d : d + " (" + pin_note_ + ")";
    }

    DeviceHealth health() override {
        if (config_.presence) {
            const auto v = config_.presence->view();
            if (v.state == CardPresence::State::removed) return DeviceHealth::removed;
            if (v.state == CardPresence::State::unreachable) return DeviceHealth::error;
            card_gate();  // a card put back: looked at again below
        }
        if (ready_.load(std::memory_order_acquire)) {
            const uint64_t gen = generation_.load();
            PooledSession session;
            CK_RV rv = pool_.acquire(session);
            CK_SESSION_INFO info{};
            if (rv == CKR_OK) rv = f_->C_GetSessionInfo(session.handle(), &info);
            session = PooledSession{};
            const bool logged_in = info.state == CKS_RW_USER_FUNCTIONS || info.state == CKS_RO_USER_FUNCTIONS;
            if (rv == CKR_OK && (logged_in || config_.pin_file.empty())) return DeviceHealth::present;
            recover(gen);
        } else {
            recover(std::nullopt);
        }
        return health_.load();
    }

    Result<std::vector<BackendKey>> list_keys() override {
        std::vector<BackendKey> keys;
        Status problem;
        Status s = run([&](PooledSession& session, const char*& call) -> CK_RV {
            keys.clear();
            call = "C_GetSessionInfo";
            CK_RV rv = check_logged_in(session.handle());
            if (rv != CKR_OK) return rv;
            call = "C_FindObjects";
            CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
            CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}};
            std::vector<CK_OBJECT_HANDLE> handles;
            rv = find_objects(f_, session.handle(), tmpl, 1, handles, kMaxKeysListed);
            if (rv != CKR_OK) return rv;
            call = "C_GetAttributeValue";
            for (const auto& [name, adoption] : adopted_) {
                CachedKey cached;
                Status missing;
                rv = lookup(session, name, cached, missing, call);
                if (rv != CKR_OK) return rv;
                if (!missing.ok()) {
                    log::warning("token " + token_label() + ": " + missing.message);
                    continue;
                }
                BackendKey key;
                Status skipped;
                rv = read_key(f_, session.handle(), cached.priv, name, has_pss_, key, skipped);
                if (rv != CKR_OK) return rv;
                if (!skipped.ok()) {
                    log::warning("token " + token_label() + ": key " + name + ": " + skipped.message);
                    continue;
                }
                rv = read_certificate(session.handle(), cached.priv, key.certificate);
                if (rv != CKR_OK) return rv;
                keys.push_back(std::move(key));
            }
            if (config_.card) return CKR_OK;  // a card's own labels are not keyward names
            for (CK_OBJECT_HANDLE h : handles) {
                std::vector<uint8_t> label;
                rv = get_bytes(f_, session.handle(), h, CKA_LABEL, label);
                if (rv == CKR_ATTRIBUTE_TYPE_INVALID || (rv == CKR_OK && label.empty())) continue;
                if (rv != CKR_OK) return rv;
                BackendKey key;
                Status skipped;
                const std::string name(label.begin(), label.end());
                rv = read_key(f_, session.handle(), h, name, has_pss_, key, skipped);
                if (rv != CKR_OK) return rv;
                if (!skipped.ok()) continue;  // not a key keyward can use
                remember(name, h, key.type);
                keys.push_back(std::move(key));
            }
            return CKR_OK;
        });
        if (!s.ok()) return s;
        std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) { return a.label < b.label; });
        return keys;
    }

    Result<BackendKey> describe(const std::string& label) override {
        BackendKey key;
        Status problem;
        Status s = run_on_key(label, problem, [&](PooledSession& session, const CachedKey& cached, const char*& call) {
            call = "C_GetAttributeValue";
            CK_RV rv = read_key(f_, session.handle(), cached.priv, label, has_pss_, key, problem);
            if (rv != CKR_OK || !problem.ok() || !adopted_.count(label)) return rv;
            return read_certificate(session.handle(), cached.priv, key.certificate);
        });
        if (!s.ok()) return s;
        if (!problem.ok()) return problem;
        return key;
    }

    Result<BackendKey> generate(const std::string& label, KeyType type) override {
        if (label.empty()) return Status{ErrorCode::invalid_argument, "a key needs a name"};
        if (config_.card)
            return Status{ErrorCode::invalid_argument,
                          "token " + token_label() +
                              " is a smartcard: keyward uses the keys already on it and makes none there "
                              "(adopt one with [keys.NAME] token and object = \"pkcs11:id=...\")"};
        std::lock_guard manage(manage_mu_);  // makes "label free, then create" one step
        BackendKey key;
        Status problem;
        bool created = false;
        Status s = run([&](PooledSession& session, const char*& call) -> CK_RV {
            problem = {};
            CK_RV rv = CKR_OK;
            CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE;
            if (created) {  // a retry after the pair was made: just find it again
                CachedKey cached;
                rv = lookup(session, label, cached, problem, call);
                if (rv != CKR_OK || !problem.ok()) return rv;
                priv = cached.priv;
            } else {
                call = "C_FindObjects";
                rv = check_logged_in(session.handle());
                if (rv != CKR_OK) return rv;
                for (CK_OBJECT_CLASS cls : {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY}) {
                    std::vector<CK_OBJECT_HANDLE> found;
                    rv = find_by_label(f_, session.handle(), cls, label, found);
                    if (rv != CKR_OK) return rv;
                    if (!found.empty()) {
                        problem = Status{ErrorCode::key_exists,
                                         "a key named " + label + " already exists on token " + token_label()};
                        return CKR_OK;
                    }
                }
                const CK_MECHANISM_TYPE gen = key_type_is_ec(type) ? CKM_EC_KEY_PAIR_GEN : CKM_RSA_PKCS_KEY_PAIR_GEN;
                CK_MECHANISM_INFO mi{};
                call = "C_GetMechanismInfo";
                if (f_->C_GetMechanismInfo(slot_.load(), gen, &mi) != CKR_OK || !(mi.flags & CKF_GENERATE_KEY_PAIR)) {
                    problem = Status{ErrorCode::invalid_argument,
                                     "token " + token_label() + " cannot generate " + std::string(key_type_name(type)) +
                                         " keys (its module offers no " +
                                         (key_type_is_ec(type) ? "CKM_EC_KEY_PAIR_GEN" : "CKM_RSA_PKCS_KEY_PAIR_GEN") +
                                         "); make the key with the card's own tools and adopt it"};
                    return CKR_OK;
                }
                call = "C_GenerateKeyPair";
                rv = generate_pair(session.handle(), label, type, priv);
                if (rv != CKR_OK) return rv;
                created = true;
                remember(label, priv, type);
            }
            call = "C_GetAttributeValue";
            return read_key(f_, session.handle(), priv, label, has_pss_, key, problem);
        });
        if (!s.ok()) return s;
        if (!problem.ok()) return problem;
        return key;
    }

    Status destroy(const std::string& label) override {
        if (auto it = adopted_.find(label); it != adopted_.end())
            return Status{ErrorCode::invalid_argument, "key " + label + " is adopted from token " + token_label() +
                                                           " (" + it->second.spec +
                                                           "); keyward never deletes a key it did not make"};
        std::lock_guard manage(manage_mu_);
        Status problem;
        Status s = run([&](PooledSession& session, const char*& call) -> CK_RV {
            problem = {};
            call = "C_GetSessionInfo";
            CK_RV rv = check_logged_in(session.handle());
            if (rv != CKR_OK) return rv;
            size_t destroyed = 0;
            for (CK_OBJECT_CLASS cls : {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY}) {
                for (;;) {  // labels may repeat on a token; remove every key object carrying it
                    call = "C_FindObjects";
                    std::vector<CK_OBJECT_HANDLE> found;
                    rv = find_by_label(f_, session.handle(), cls, label, found);
                    if (rv != CKR_OK) return rv;
                    if (found.empty()) break;
                    call = "C_DestroyObject";
                    for (CK_OBJECT_HANDLE h : found) {
                        rv = f_->C_DestroyObject(session.handle(), h);
                        if (rv != CKR_OK) return rv;
                        ++destroyed;
                    }
                }
            }
            forget(label);
            if (destroyed == 0) problem = no_such_key(label);
            return CKR_OK;
        });
        if (!s.ok()) return s;
        return problem;
    }

    Result<std::vector<uint8_t>> sign(const std::string& label, Scheme scheme,
                                      std::span<const uint8_t> digest) override {
        const SchemeInfo* info = scheme_info(scheme);
        if (!info)
            return Status{ErrorCode::unsupported_scheme,
                          "unknown signature scheme 0x" +
                              to_hex(std::array<uint8_t, 2>{static_cast<uint8_t>(static_cast<uint16_t>(scheme) >> 8),
                                                            static_cast<uint8_t>(scheme)})};
        if (digest.size() != info->digest_size)
            return Status{ErrorCode::invalid_argument, std::string(info->name) + " needs a " +
                                                           std::to_string(info->digest_size) + "-byte digest, got " +
                                                           std::to_string(digest.size())};
        std::vector<uint8_t> signature;
        Status problem;
        Status s = run_on_key(label, problem, [&](PooledSession& session, const CachedKey& key, const char*& call) {
            if (!scheme_fits(key.type, *info, has_pss_)) {
                problem =
                    Status{ErrorCode::unsupported_scheme, "key " + label + " (" + std::string(key_type_name(key.type)) +
                                                              ") cannot sign with " + std::string(info->name)};
                return CKR_OK;
            }
            return sign_with(session, key, *info, digest, signature, call);
        });
        if (!s.ok()) return s;
        if (!problem.ok()) return problem;
        return signature;
    }

private:
    // run() for an operation on the private key called `label`: finds it first (a missing
    // key is reported in `problem`, not as a device error).
    template <typename Op>
    Status run_on_key(const std::string& label, Status& problem, Op&& op) {
        return run([&](PooledSession& session, const char*& call) -> CK_RV {
            problem = {};
            CachedKey key;
            CK_RV rv = lookup(session, label, key, problem, call);
            if (rv != CKR_OK || !problem.ok()) return rv;
            return op(session, key, call);
        });
    }

    // Runs `op` on a pooled session; on a recoverable device error, recovers and runs it once more.
    template <typename Op>
    Status run(Op&& op) {
        for (int attempt = 0;; ++attempt) {
            if (Status gone = card_gate(); !gone.ok()) return gone;
            Status ready = ensure_ready();
            if (!ready.ok()) return ready;
            const uint64_t gen = generation_.load(std::memory_order_acquire);
            const char* call = "C_OpenSession";
            CK_RV rv;
            {
                PooledSession session;
                rv = pool_.acquire(session);
                if (rv == CKR_OK) {
                    rv = op(session, call);
                    if (rv != CKR_OK) {
                        // A failed call may leave an operation active: never reuse the session.
                        session.discard();
                        rv = explain_failure(session.handle(), rv, gen);
                    }
                }
            }
            if (rv == CKR_OPERATION_ACTIVE && attempt == 0) continue;  // that session is gone now
            if (rv == CKR_OK) return {};
            if (Status gone = card_gate(); !gone.ok()) return gone;  // removed during the operation
            if (is_recoverable(rv) && attempt == 0) {
                Status recovered = recover(gen);
                if (!recovered.ok()) return recovered;
                continue;
            }
            if (is_recoverable(rv)) {
                // Recovered once already and it failed again: leave the next caller a fresh start.
                ready_.store(false, std::memory_order_release);
                return Status{ErrorCode::device_unavailable, "token " + token_label() + ": " + call + " failed with " +
                                                                 ckr_name(rv) + " even after reopening the sessions"};
            }
            return Status{code_for(rv), "token " + token_label() + ": " + call + " failed: " + ckr_name(rv)};
        }
    }

    // A card the monitor saw go is not asked for anything; one that came back (a new epoch)
    // is looked at anew: sessions reopened, serial checked, logged in again.
    Status card_gate() {
        if (!config_.presence) return {};
        const auto v = config_.presence->view();
        if (v.state == CardPresence::State::removed || v.state == CardPresence::State::unreachable)
            return Status{ErrorCode::device_unavailable, v.message};
        if (v.epoch != seen_epoch_.load(std::memory_order_acquire)) ready_.store(false, std::memory_order_release);
        return {};
    }

    Status ensure_ready() {
        if (ready_.load(std::memory_order_acquire)) return {};
        return recover(std::nullopt);
    }

    // Drops every session and cached handle, finds the token again (its slot may have changed),
    // reopens and logs in. `failed_in` is the generation an operation failed in: if someone else
    // has recovered since, there is nothing to do. Without it (not ready yet), a recovery that
    // finished while we waited for the lock is enough.
    Status recover(std::optional<uint64_t> failed_in) {
        std::lock_guard lock(recover_mu_);
        if (ready_.load() && (!failed_in || generation_.load() != *failed_in)) return {};
        ready_.store(false);
        generation_.fetch_add(1);  // stale cache entries and lent sessions now fail their checks
        const uint64_t epoch = config_.presence ? config_.presence->view().epoch : 0;

        auto found = find_token(f_, uri_, config_.token_uri);
        if (!found.ok()) {
            pool_.reset(std::nullopt);
            health_.store(found.status().code == ErrorCode::no_such_token ? DeviceHealth::removed
                                                                          : DeviceHealth::error);
            return Status{ErrorCode::device_unavailable,
                          "token " + config_.token_uri + " is not available (removed?): " + found.status().message};
        }
        if (Status s = check_card(found.value()); !s.ok()) {
            pool_.reset(std::nullopt);
            return s;
        }
        pool_.reset(found.value().slot);
        slot_.store(found.value().slot);
        set_token_info(found.value());
        if (!pss_checked_) {
            has_pss_ = token_has_mechanism(found.value().slot, CKM_RSA_PKCS_PSS);
            pss_checked_ = true;
        }
        Status login_status = login();
        if (!login_status.ok()) return login_status;
        // Again after the login: work that started during the recovery sees the change too.
        generation_.fetch_add(1);
        health_.store(DeviceHealth::present);
        seen_epoch_.store(epoch, std::memory_order_release);
        ready_.store(true, std::memory_order_release);
        return {};
    }

    // Called with recover_mu_ held. A card must be the one first seen (its serial), and a
    // PIN the card has locked is not offered to it.
    Status check_card(const FoundToken& found) {
        const auto& ti = found.info;
        const std::string serial = padded_field(ti.serialNumber, sizeof ti.serialNumber);
        std::string problem;
        if (config_.card) {
            if (expected_serial_.empty()) expected_serial_ = serial;
            if (serial != expected_serial_) {
                problem = "the card in the reader" +
                          (config_.presence ? " " + config_.presence->reader() : std::string()) +
                          " is not the card this token was opened with (serial " + serial + ", expected " +
                          expected_serial_ + "); its keys are not used in place of the other card's";
                health_.store(DeviceHealth::error);
            }
        }
        if (problem.empty() && !config_.pin_file.empty() && (ti.flags & CKF_USER_PIN_LOCKED)) {
            problem =
                "the user PIN is locked (CKF_USER_PIN_LOCKED); unblock it with the card's PUK or SO PIN, "
                "keyward does not try it";
            health_.store(DeviceHealth::locked);
        }
        std::string pin_note;
        if (problem.empty() && (ti.flags & (CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW))) {
            pin_note = (ti.flags & CKF_USER_PIN_FINAL_TRY)
                           ? "PIN: one more wrong try locks it (CKF_USER_PIN_FINAL_TRY)"
                           : "PIN: entered wrongly before, tries are running low (CKF_USER_PIN_COUNT_LOW)";
            log::warning("token " + config_.token_uri + ": " + pin_note);
        }
        {
            std::lock_guard lock(info_mu_);
            pin_note_ = pin_note;
            if (card_problem_ != problem && !problem.empty()) log::error("token " + config_.token_uri + ": " + problem);
            card_problem_ = problem;
        }
        if (problem.empty()) return {};
        return Status{ErrorCode::device_unavailable, "token " + config_.token_uri + ": " + problem};
    }

    // Called with recover_mu_ held.
    Status login() {
        if (config_.pin_file.empty()) return {};
        {
            std::lock_guard pin_lock(pin_mu_);
            if (pin_.rejected_and_unchanged()) {
                health_.store(pin_rv_ == CKR_PIN_LOCKED ? DeviceHealth::locked : DeviceHealth::needs_pin);
                return pin_rejected();
            }
        }
        PooledSession session;
        CK_RV rv = pool_.acquire(session);
        if (rv != CKR_OK) {
            health_.store(DeviceHealth::error);
            return Status{code_for(rv), "token " + token_label() + ": C_OpenSession failed: " + ckr_name(rv)};
        }
        // Not before the session is ours: a signer holding the only session may be waiting
        // for pin_mu_ (context-specific login).
        std::lock_guard pin_lock(pin_mu_);
        {
            Pin pin;
            Status read = pin_.read(pin);
            if (!read.ok()) {
                health_.store(DeviceHealth::needs_pin);
                return Status{ErrorCode::device_unavailable, "token " + token_label() + ": " + read.message};
            }
            rv = f_->C_Login(session.handle(), CKU_USER, const_cast<unsigned char*>(pin.data()), pin.size());
        }
        if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
            pin_.clear_rejection();
            if (rv == CKR_OK) {  // a PIN the card accepted resets its retry counter
                std::lock_guard info(info_mu_);
                pin_note_.clear();
            }
            return {};
        }
        if (is_pin_rejection(rv)) {
            pin_.mark_rejected();
            pin_rv_ = rv;
            health_.store(rv == CKR_PIN_LOCKED ? DeviceHealth::locked : DeviceHealth::needs_pin);
            log::error(pin_rejected().message);
            return pin_rejected();
        }
        health_.store(DeviceHealth::error);
        return Status{code_for(rv), "token " + token_label() + ": C_Login failed: " + ckr_name(rv)};
    }

    // The PIN again for one signature (CKA_ALWAYS_AUTHENTICATE, e.g. PIV slot 9C). A PIN the
    // device rejected is not offered again until its file changes, here as at login.
    CK_RV context_login(CK_SESSION_HANDLE s) {
        std::lock_guard lock(pin_mu_);
        if (config_.pin_file.empty()) return CKR_USER_NOT_LOGGED_IN;
        if (pin_.rejected_and_unchanged()) return pin_rv_;
        Pin pin;
        if (!pin_.read(pin).ok()) return CKR_PIN_INCORRECT;
        CK_RV rv = f_->C_Login(s, CKU_CONTEXT_SPECIFIC, const_cast<unsigned char*>(pin.data()), pin.size());
        if (is_pin_rejection(rv)) {
            pin_.mark_rejected();
            pin_rv_ = rv;
            health_.store(rv == CKR_PIN_LOCKED ? DeviceHealth::locked : DeviceHealth::needs_pin);
            log::error(pin_rejected().message);
        }
        return rv;
    }

    Status pin_rejected() const {
        return Status{ErrorCode::device_unavailable, "token " + token_label() + ": the PIN in " + pin_.path() +
                                                         " was rejected (" + ckr_name(pin_rv_) +
                                                         "); it is not tried again until that file changes"};
    }

    bool token_has_mechanism(CK_SLOT_ID slot, CK_MECHANISM_TYPE wanted) {
        CK_ULONG n = 0;
        if (f_->C_GetMechanismList(slot, nullptr, &n) != CKR_OK) return false;
        std::vector<CK_MECHANISM_TYPE> list(n);
        if (f_->C_GetMechanismList(slot, list.data(), &n) != CKR_OK) return false;
        list.resize(n);
        return std::find(list.begin(), list.end(), wanted) != list.end();
    }

    void set_token_info(const FoundToken& found) {
        const auto& ti = found.info;
        std::lock_guard lock(info_mu_);
        label_ = padded_field(ti.label, sizeof ti.label);
        description_ = label_ + " (" + padded_field(ti.model, sizeof ti.model) + ", " +
                       padded_field(ti.manufacturerID, sizeof ti.manufacturerID) + ")";
    }

    std::string token_label() const {
        std::lock_guard lock(info_mu_);
        return label_.empty() ? config_.token_uri : "'" + label_ + "'";
    }

    // Some modules answer a lost login with a generic error (SoftHSM: CKR_GENERAL_ERROR from
    // C_SignInit after a logout). Ask the session itself before calling the error final.
    // A recovery that ran meanwhile (the generation moved) may already have logged in again.
    CK_RV explain_failure(CK_SESSION_HANDLE s, CK_RV rv, uint64_t gen) {
        if (is_recoverable(rv) || config_.pin_file.empty()) return rv;
        const CK_RV state = check_logged_in(s);
        if (is_recoverable(state)) return state;
        return generation_.load(std::memory_order_acquire) != gen ? CKR_USER_NOT_LOGGED_IN : rv;
    }

    // Private objects are invisible, not an error, to a session that lost its login.
    CK_RV check_logged_in(CK_SESSION_HANDLE s) {
        if (config_.pin_file.empty()) return CKR_OK;
        CK_SESSION_INFO info{};
        CK_RV rv = f_->C_GetSessionInfo(s, &info);
        if (rv != CKR_OK) return rv;
        if (info.state != CKS_RW_USER_FUNCTIONS && info.state != CKS_RO_USER_FUNCTIONS) return CKR_USER_NOT_LOGGED_IN;
        return CKR_OK;
    }

    static Status no_such_key(const std::string& label) {
        return Status{ErrorCode::no_such_key, "no key named " + label};
    }

    // The private key for `label`: from the cache, or found once and cached.
    CK_RV lookup(PooledSession& session, const std::string& label, CachedKey& out, Status& problem, const char*& call) {
        const uint64_t gen = generation_.load(std::memory_order_acquire);
        {
            std::shared_lock lock(cache_mu_);
            auto it = cache_.find(label);
            if (it != cache_.end() && it->second.generation == gen) {
                out = it->second;
                return CKR_OK;
            }
        }
        call = "C_FindObjects";
        std::vector<CK_OBJECT_HANDLE> found;
        const auto adopted = adopted_.find(label);
        // Absent, or invisible because the login was lost around the search (and maybe restored
        // already by another thread's recovery, which moves the generation on). A key is only
        // declared absent after a search with a login before and after it.
        for (int look = 0; look < 2 && found.empty(); ++look) {
            CK_RV rv = adopted == adopted_.end()
                           ? find_by_label(f_, session.handle(), CKO_PRIVATE_KEY, label, found)
                           : find_adopted(session.handle(), CKO_PRIVATE_KEY, adopted->second.uri, found);
            if (rv != CKR_OK) return rv;
            if (!found.empty()) break;
            rv = check_logged_in(session.handle());
            if (rv != CKR_OK) return rv;
            if (generation_.load(std::memory_order_acquire) != gen) return CKR_USER_NOT_LOGGED_IN;
        }
        if (found.empty()) {
            problem = adopted == adopted_.end()
                          ? no_such_key(label)
                          : Status{ErrorCode::no_such_key, "key " + label + ": no private key " + adopted->second.spec +
                                                               " on token " + token_label()};
            return CKR_OK;
        }
        if (adopted != adopted_.end() && found.size() > 1) {
            problem = Status{ErrorCode::invalid_argument, "key " + label + ": " + adopted->second.spec +
                                                              " matches more than one private key on " + token_label() +
                                                              "; give both id and object"};
            return CKR_OK;
        }
        call = "C_GetAttributeValue";
        std::optional<KeyType> type;
        CK_RV rv = read_key_type(f_, session.handle(), found.front(), type);
        if (rv != CKR_OK) return rv;
        if (!type) {
            problem =
                Status{ErrorCode::unsupported_scheme, "key " + label + " has a type or size keyward does not handle"};
            return CKR_OK;
        }
        CK_BBOOL always = CK_FALSE;
        CK_ATTRIBUTE aa{CKA_ALWAYS_AUTHENTICATE, &always, sizeof always};
        if (f_->C_GetAttributeValue(session.handle(), found.front(), &aa, 1) != CKR_OK) always = CK_FALSE;
        out = CachedKey{found.front(), *type, gen, always == CK_TRUE};
        remember(label, out, gen);
        return CKR_OK;
    }

    // Private or certificate objects matching an adoption's id and/or label (at most 2).
    CK_RV find_adopted(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const ObjectUri& uri,
                       std::vector<CK_OBJECT_HANDLE>& out) {
        std::vector<CK_ATTRIBUTE> tmpl = {{CKA_CLASS, &cls, sizeof cls}};
        if (uri.id) tmpl.push_back({CKA_ID, const_cast<char*>(uri.id->data()), uri.id->size()});
        if (uri.object) tmpl.push_back({CKA_LABEL, const_cast<char*>(uri.object->data()), uri.object->size()});
        return find_objects(f_, s, tmpl.data(), static_cast<CK_ULONG>(tmpl.size()), out, 2);
    }

    // The certificate stored with the key (same CKA_ID), DER; none is not an error.
    CK_RV read_certificate(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, std::vector<uint8_t>& der) {
        der.clear();
        std::vector<uint8_t> id;
        CK_RV rv = get_bytes(f_, s, priv, CKA_ID, id);
        if (rv == CKR_ATTRIBUTE_TYPE_INVALID || (rv == CKR_OK && id.empty())) return CKR_OK;
        if (rv != CKR_OK) return rv;
        CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
        CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_ID, id.data(), id.size()}};
        std::vector<CK_OBJECT_HANDLE> found;
        rv = find_objects(f_, s, tmpl, 2, found, 1);
        if (rv != CKR_OK || found.empty()) return rv;
        rv = get_bytes(f_, s, found.front(), CKA_VALUE, der);
        return rv == CKR_ATTRIBUTE_TYPE_INVALID ? CKR_OK : rv;
    }

    void remember(const std::string& label, CK_OBJECT_HANDLE h, KeyType type) {
        remember(label, CachedKey{h, type, 0, false}, generation_.load(std::memory_order_acquire));
    }
    void remember(const std::string& label, CachedKey key, uint64_t gen) {
        key.generation = gen;
        std::unique_lock lock(cache_mu_);
        cache_[label] = key;
    }
    void forget(const std::string& label) {
        std::unique_lock lock(cache_mu_);
        cache_.erase(label);
    }

    CK_RV generate_pair(CK_SESSION_HANDLE s, const std::string& label, KeyType type, CK_OBJECT_HANDLE& priv) {
        std::array<uint8_t, kKeyIdSize> id{};
        if (RAND_bytes(id.data(), static_cast<int>(id.size())) != 1) return CKR_FUNCTION_FAILED;
        CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
        auto* label_ptr = const_cast<char*>(label.data());
        const auto ec_params = ec_params_der(type);
        CK_ULONG bits = key_type_bits(type);
        CK_BYTE exponent[] = {0x01, 0x00, 0x01};

        std::vector<CK_ATTRIBUTE> pub = {
            {CKA_TOKEN, &yes, sizeof yes},  {CKA_PRIVATE, &no, sizeof no}, {CKA_VERIFY, &yes, sizeof yes},
            {CKA_ENCRYPT, &no, sizeof no},  {CKA_WRAP, &no, sizeof no},    {CKA_LABEL, label_ptr, label.size()},
            {CKA_ID, id.data(), id.size()},
        };
        std::vector<CK_ATTRIBUTE> prv = {
            {CKA_TOKEN, &yes, sizeof yes},     {CKA_PRIVATE, &yes, sizeof yes}, {CKA_SENSITIVE, &yes, sizeof yes},
            {CKA_EXTRACTABLE, &no, sizeof no}, {CKA_SIGN, &yes, sizeof yes},    {CKA_DECRYPT, &no, sizeof no},
            {CKA_UNWRAP, &no, sizeof no},      {CKA_DERIVE, &no, sizeof no},    {CKA_LABEL, label_ptr, label.size()},
            {CKA_ID, id.data(), id.size()},
        };
        CK_MECHANISM mech{};
        if (key_type_is_ec(type)) {
            mech.mechanism = CKM_EC_KEY_PAIR_GEN;
            pub.push_back({CKA_EC_PARAMS, const_cast<uint8_t*>(ec_params.data()), ec_params.size()});
        } else {
            mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
            pub.push_back({CKA_MODULUS_BITS, &bits, sizeof bits});
            pub.push_back({CKA_PUBLIC_EXPONENT, exponent, sizeof exponent});
        }
        CK_OBJECT_HANDLE pub_handle = CK_INVALID_HANDLE;
        return f_->C_GenerateKeyPair(s, &mech, pub.data(), static_cast<CK_ULONG>(pub.size()), prv.data(),
                                     static_cast<CK_ULONG>(prv.size()), &pub_handle, &priv);
    }

    // The hot path: no lock is held here, and the only allocation is the signature itself.
    CK_RV sign_with(PooledSession& session, const CachedKey& key, const SchemeInfo& info,
                    std::span<const uint8_t> digest, std::vector<uint8_t>& signature, const char*& call) {
        std::array<uint8_t, kMaxDigestInfoSize> digest_info{};
        CK_RSA_PKCS_PSS_PARAMS pss{};
        CK_MECHANISM mech{};
        const uint8_t* data = digest.data();
        CK_ULONG data_len = digest.size();
        switch (info.family) {
            case SchemeFamily::ecdsa:
                mech.mechanism = CKM_ECDSA;
                // Leftmost bits of the hash, as many as the group order has (FIPS 186-4 §6.4).
                data_len = std::min<CK_ULONG>(data_len, ec_coordinate_size(key.type));
                break;
            case SchemeFamily::rsa_pkcs1:
                mech.mechanism = CKM_RSA_PKCS;
                data_len = build_digest_info(digest, digest_info.data());
                data = digest_info.data();
                break;
            case SchemeFamily::rsa_pss: {
                const HashParams hp = hash_params(digest.size());
                pss.hashAlg = hp.hash;
                pss.mgf = hp.mgf;
                pss.sLen = digest.size();
                mech.mechanism = CKM_RSA_PKCS_PSS;
                mech.pParameter = &pss;
                mech.ulParameterLen = sizeof pss;
                break;
            }
        }
        call = "C_SignInit";
        CK_RV rv = f_->C_SignInit(session.handle(), &mech, key.priv);
        if (rv != CKR_OK) return rv;
        if (key.always_authenticate) {
            call = "C_Login(CKU_CONTEXT_SPECIFIC)";
            rv = context_login(session.handle());
            if (rv != CKR_OK) return rv;
        }
        call = "C_Sign";
        if (key_type_is_ec(key.type)) {
            std::array<uint8_t, 2 * 66> raw{};
            CK_ULONG raw_len = 2 * ec_coordinate_size(key.type);
            rv = f_->C_Sign(session.handle(), const_cast<uint8_t*>(data), data_len, raw.data(), &raw_len);
            if (rv != CKR_OK) return rv;
            signature.clear();
            if (!ecdsa_raw_to_der(std::span<const uint8_t>(raw.data(), raw_len), signature)) return CKR_DEVICE_ERROR;
            return CKR_OK;
        }
        CK_ULONG sig_len = key_type_bits(key.type) / 8;
        signature.resize(sig_len);
        rv = f_->C_Sign(session.handle(), const_cast<uint8_t*>(data), data_len, signature.data(), &sig_len);
        if (rv != CKR_OK) return rv;
        signature.resize(sig_len);
        return CKR_OK;
    }

    std::shared_ptr<Module> module_;
    CK_FUNCTION_LIST* f_;
    const Pkcs11Config config_;
    const TokenUri uri_;

    std::mutex recover_mu_;  // recovery and login, one at a time
    // The PIN file and what the device said of it. Taken after recover_mu_ when both are held,
    // and never while waiting for a session.
    std::mutex pin_mu_;
    PinFile pin_;  // guarded by pin_mu_
    CK_RV pin_rv_ = CKR_PIN_INCORRECT;
    bool pss_checked_ = false;
    bool has_pss_ = false;  // written once under recover_mu_ before ready_ is first set
    std::atomic<bool> ready_{false};
    std::atomic<uint64_t> generation_{1};
    std::atomic<uint64_t> seen_epoch_{0};  // the card presence epoch the last recovery saw
    std::atomic<CK_SLOT_ID> slot_{0};
    std::string expected_serial_;              // guarded by recover_mu_: a card's serial, from the first one seen
    std::map<std::string, Adoption> adopted_;  // set before the first use, read-only after
    std::atomic<DeviceHealth> health_{DeviceHealth::error};

    SessionPool pool_;

    std::shared_mutex cache_mu_;
    std::unordered_map<std::string, CachedKey> cache_;

    std::mutex manage_mu_;  // generate and destroy

    mutable std::mutex info_mu_;
    std::string label_;
    std::string description_;
    std::string card_problem_;  // another card, a locked PIN: shown in status
    std::string pin_note_;      // the card's PIN counter running low (token flags): shown in status
};

size_t default_sessions() {
    const unsigned cpus = std::thread::hardware_concurrency();
    return std::max<size_t>(2, cpus);
}

}  // namespace

Result<std::unique_ptr<KeyBackend>> open_backend(const Pkcs11Config& config) {
    auto uri = parse_token_uri(config.token_uri);
    if (!uri.ok()) return uri.status();
    auto module = Module::acquire(config.module_path);
    if (!module.ok()) return module.status();
    const size_t sessions = config.sessions ? config.sessions : default_sessions();
    std::map<std::string, Adoption> adopted;
    for (const auto& a : config.adopted) {
        auto object = parse_object_uri(a.object_uri);
        if (!object.ok()) return Status{object.status().code, "key " + a.name + ": " + object.status().message};
        adopted.emplace(a.name, Adoption{std::move(object).value(), "object = \"" + a.object_uri + "\""});
    }
    auto backend = std::make_unique<Pkcs11Backend>(std::move(module).value(), config, std::move(uri).value(), sessions);
    Status s = backend->start(std::move(adopted));
    if (!s.ok()) return s;
    return std::unique_ptr<KeyBackend>(std::move(backend));
}

}  // namespace keyward::pkcs11
