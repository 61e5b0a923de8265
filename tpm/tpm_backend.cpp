// TpmBackend: keys wrapped by a TPM 2.0 under its storage root key, kept as TSS2 PRIVATE KEY
// files, signed through ESAPI. The TPM may have as few as three object slots and no resource
// manager (swtpm, /dev/tpm0), so the backend keeps at most one key loaded between calls and
// loads a parent only while it loads a key.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "tpm/esys.hpp"
#include "tpm/key_file.hpp"
#include "tpm/key_store.hpp"
#include "tpm/public_key.hpp"
#include "tpm/rc.hpp"
#include "tpm/tpm_backend.hpp"
#include "core/hex.hpp"

namespace keyward::tpm {
namespace {

constexpr TPM2_HANDLE kSrkHandle = 0x81000001;
constexpr int kBusyRetries = 20;
constexpr auto kBusyPause = std::chrono::milliseconds(5);
constexpr size_t kMaxAuthSize = sizeof(TPMU_HA);  // TPM2B_AUTH holds at most a digest

std::string hex32(uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", v);
    return buf;
}

// An auth value read from the configured file; wiped when it goes.
struct Auth {
    TPM2B_AUTH value{};
    ~Auth() { OPENSSL_cleanse(&value, sizeof value); }
    std::array<uint8_t, SHA256_DIGEST_LENGTH> fingerprint() const {
        std::array<uint8_t, SHA256_DIGEST_LENGTH> out{};
        SHA256(value.buffer, value.size, out.data());
        return out;
    }
};

Status read_auth(const std::string& path, Auth& auth) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status{ErrorCode::device_unavailable, "cannot read the TPM auth file " + path};
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    const bool too_long = text.size() > kMaxAuthSize;
    if (!too_long) {
        auth.value.size = static_cast<UINT16>(text.size());
        std::memcpy(auth.value.buffer, text.data(), text.size());
    }
    OPENSSL_cleanse(text.data(), text.size());
    if (too_long)
        return Status{ErrorCode::invalid_argument, "the TPM auth value in " + path + " is longer than " +
                                                       std::to_string(kMaxAuthSize) + " bytes"};
    return {};
}

bool scheme_fits(const TPMT_PUBLIC& pub, KeyType type, const SchemeInfo& s, bool pss_ok) noexcept {
    if (!keyward::scheme_fits(type, s, pss_ok)) return false;
    const bool ec = key_type_is_ec(type);
    // A key made with a fixed scheme signs only with that scheme and hash.
    const TPMT_ASYM_SCHEME& fixed = ec ? reinterpret_cast<const TPMT_ASYM_SCHEME&>(pub.parameters.eccDetail.scheme)
                                       : reinterpret_cast<const TPMT_ASYM_SCHEME&>(pub.parameters.rsaDetail.scheme);
    if (fixed.scheme == TPM2_ALG_NULL) return true;
    const TPM2_ALG_ID family = s.family == SchemeFamily::ecdsa      ? TPM2_ALG_ECDSA
                               : s.family == SchemeFamily::rsa_pss ? TPM2_ALG_RSAPSS
                                                                        : TPM2_ALG_RSASSA;
    return fixed.scheme == family && fixed.details.anySig.hashAlg == hash_alg_for(s.digest_size);
}

std::vector<Scheme> schemes_for(const TPMT_PUBLIC& pub, KeyType type, bool pss_ok) {
    std::vector<Scheme> out;
    for (const auto& s : all_schemes())
        if (scheme_fits(pub, type, s, pss_ok)) out.push_back(s.scheme);
    return out;
}

// TLS 1.3 needs RSA-PSS with salt = hash length; TPMs built to the letter of TPM 2.0 before
// revision 1.59 use the largest salt instead. Decided by verifying a real signature.
bool pss_salt_is_hash_length(const std::vector<uint8_t>& spki, const std::vector<uint8_t>& digest,
                             const std::vector<uint8_t>& signature) {
    const unsigned char* p = spki.data();
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())),
                                                             EVP_PKEY_free);
    if (!pkey) return false;
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new(pkey.get(), nullptr),
                                                                    EVP_PKEY_CTX_free);
    return ctx && EVP_PKEY_verify_init(ctx.get()) > 0 &&
           EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PSS_PADDING) > 0 &&
           EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) > 0 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(), RSA_PSS_SALTLEN_DIGEST) > 0 &&
           EVP_PKEY_verify(ctx.get(), signature.data(), signature.size(), digest.data(), digest.size()) == 1;
}

class TpmBackend final : public KeyBackend {
public:
    TpmBackend(TpmConfig config, KeyStore store) : config_(std::move(config)), store_(std::move(store)) {}

    ~TpmBackend() override {
        std::lock_guard lock(mu_);
        disconnect(true);
    }

    std::string_view kind() const noexcept override { return "tpm"; }
    size_t max_concurrency() const noexcept override { return 1; }

    std::string description() const override {
        std::lock_guard lock(mu_);
        return (tpm_info_.empty() ? std::string("TPM 2.0") : tpm_info_) + " via " + config_.tcti;
    }

    DeviceHealth health() override {
        std::lock_guard lock(mu_);
        if (conn_) return DeviceHealth::present;
        return connect().ok() ? DeviceHealth::present : DeviceHealth::removed;
    }

    Result<std::vector<BackendKey>> list_keys() override {
        std::lock_guard lock(mu_);
        auto names = store_.names();
        if (!names.ok()) return names.status();
        std::vector<BackendKey> out;
        for (const auto& name : names.value()) {
            auto key = describe_locked(name, true);
            if (key.ok()) {
                out.push_back(std::move(key).value());
                continue;
            }
            // One unreadable file must not hide the other keys; a TPM that is away must.
            if (key.status().code == ErrorCode::device_unavailable) return key.status();
        }
        return out;
    }

    Result<BackendKey> describe(const std::string& label) override {
        std::lock_guard lock(mu_);
        return describe_locked(label, false);
    }

    Result<BackendKey> generate(const std::string& label, KeyType type) override {
        std::lock_guard lock(mu_);
        if (!KeyStore::is_valid_name(label)) return Status{ErrorCode::invalid_argument, "invalid key name " + label};
        auto tmpl = signing_key_template(type);
        if (!tmpl)
            return Status{ErrorCode::invalid_argument,
                          "TPM tokens make ec-p256, ec-p384, rsa-2048 and rsa-3072 keys, not " +
                              std::string(key_type_name(type))};
        if (store_.read(label).ok()) return Status{ErrorCode::key_exists, "a key named " + label + " exists already"};

        Auth auth;
        if (!config_.auth_file.empty())
            if (auto s = read_auth(config_.auth_file, auth); !s.ok()) return s;

        KeyFile made;
        made.empty_auth = config_.auth_file.empty();
        Status problem;
        Status s = run("creating " + std::string(key_type_name(type)) + " key " + label,
                       [&](ESYS_CONTEXT* ctx, const char*& call) -> TSS2_RC {
            TPM2_HANDLE parent_handle = TPM2_RH_OWNER;
            Loaded parent;
            ESYS_TR parent_tr = ESYS_TR_NONE;
            TSS2_RC rc = default_parent(ctx, parent_handle, parent, parent_tr, call);
            if (rc != TSS2_RC_SUCCESS) return rc;
            Loaded session;
            ESYS_TR shandle = ESYS_TR_PASSWORD;
            if (!made.empty_auth) {
                // The new key's auth value travels in inSensitive: encrypt it with a session
                // salted to the parent, so it never crosses the bus in clear.
                call = "Esys_StartAuthSession";
                rc = start_salted_session(ctx, parent_tr, session);
                if (rc != TSS2_RC_SUCCESS) return rc;
                shandle = session.get();
            }
            TPM2B_SENSITIVE_CREATE sensitive{};
            sensitive.sensitive.userAuth = auth.value;
            TPM2B_DATA outside{};
            TPML_PCR_SELECTION pcrs{};
            TPM2B_PRIVATE* priv = nullptr;
            TPM2B_PUBLIC* pub = nullptr;
            call = "Esys_Create";
            rc = Esys_Create(ctx, parent_tr, shandle, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &*tmpl, &outside, &pcrs,
                             &priv, &pub, nullptr, nullptr, nullptr);
            OPENSSL_cleanse(&sensitive, sizeof sensitive);
            EsysPtr<TPM2B_PRIVATE> priv_owner(priv);
            EsysPtr<TPM2B_PUBLIC> pub_owner(pub);
            if (rc != TSS2_RC_SUCCESS) return rc;
            made.parent = parent_handle;
            made.pub = *pub;
            made.priv = *priv;
            return TSS2_RC_SUCCESS;
        }, problem);
        if (!s.ok()) {
            if (s.code == ErrorCode::unsupported_scheme)
                return Status{ErrorCode::invalid_argument,
                              "this TPM cannot make " + std::string(key_type_name(type)) + " keys: " + s.message};
            return s;
        }
        if (!problem.ok()) return problem;
        return store_and_describe(label, made);
    }

    Result<BackendKey> import_key(const std::string& label, std::span<const uint8_t> blob) override {
        std::lock_guard lock(mu_);
        if (!KeyStore::is_valid_name(label)) return Status{ErrorCode::invalid_argument, "invalid key name " + label};
        auto parsed = parse_key_file(blob);
        if (!parsed.ok()) return parsed.status();
        if (auto why = unusable_reason(parsed->pub.publicArea); !why.empty())
            return Status{ErrorCode::invalid_argument, "cannot use that key: " + why};
        if (store_.read(label).ok()) return Status{ErrorCode::key_exists, "a key named " + label + " exists already"};
        // Prove this TPM can load it (right TPM, parent present) before adopting it. It is
        // loaded under a name no key can have, so it never passes for a loaded key of that name.
        Status problem;
        Status s = run("loading the imported key", [&](ESYS_CONTEXT* ctx, const char*& call) -> TSS2_RC {
            return load(ctx, "\n" + label, parsed.value(), call, problem);
        }, problem);
        drop_current();
        if (!s.ok()) return Status{s.code, s.message + " (was it made on this TPM?)"};
        if (!problem.ok()) return problem;
        return store_and_describe(label, parsed.value());
    }

    Status destroy(const std::string& label) override {
        std::lock_guard lock(mu_);
        if (current_.label == label) drop_current();
        described_.erase(label);
        rejected_auth_.erase(label);
        // The TPM holds nothing for a key outside its slots: the blob is the key.
        return store_.remove(label);
    }

    Result<std::vector<uint8_t>> sign(const std::string& label, Scheme scheme,
                                      std::span<const uint8_t> digest) override {
        const SchemeInfo* info = scheme_info(scheme);
        if (!info)
            return Status{ErrorCode::unsupported_scheme,
                          "unknown signature scheme " + hex32(static_cast<uint16_t>(scheme))};
        if (digest.size() != info->digest_size)
            return Status{ErrorCode::invalid_argument, std::string(info->name) + " needs a " +
                                                           std::to_string(info->digest_size) + "-byte digest, got " +
                                                           std::to_string(digest.size())};
        std::lock_guard lock(mu_);
        auto entry = cached(label);
        if (!entry.ok()) return entry.status();
        const Described& d = *entry.value();
        if (!scheme_fits(d.file.pub.publicArea, d.key.type, *info, d.pss_ok))
            return Status{ErrorCode::unsupported_scheme, "key " + label + " (" + std::string(key_type_name(d.key.type)) +
                                                             ") cannot sign with " + std::string(info->name) +
                                                             (info->family == SchemeFamily::rsa_pss && !d.pss_ok
                                                                  ? " on this TPM (see its tls13_rsa_pss attribute)"
                                                                  : "")};
        TPMT_SIG_SCHEME tpm_scheme{};
        tpm_scheme.scheme = info->family == SchemeFamily::ecdsa     ? TPM2_ALG_ECDSA
                            : info->family == SchemeFamily::rsa_pss ? TPM2_ALG_RSAPSS
                                                                         : TPM2_ALG_RSASSA;
        tpm_scheme.details.any.hashAlg = hash_alg_for(digest.size());
        return sign_locked(label, d.file, tpm_scheme, digest);
    }

private:
    struct Described {
        std::vector<uint8_t> blob;
        KeyFile file;
        BackendKey key;
        bool pss_ok = false;
    };

    // The one key kept loaded between calls (and its auth session, for keys with an auth value).
    struct Current {
        std::string label;
        Loaded key;
        Loaded session;
    };

    // Runs `op` against the TPM: TPM_RC_RETRY and friends are retried after a pause; a lost
    // connection is reopened, and a vanished handle or full slot table cleared, then `op` runs
    // once more. `problem` is op's channel for failures that are not TPM codes.
    template <typename Op>
    Status run(const std::string& what, Op&& op, Status& problem) {
        for (int attempt = 0;; ++attempt) {
            if (!conn_)
                if (auto s = connect(); !s.ok()) return Status{s.code, what + ": " + s.message};
            problem = {};
            const char* call = "";
            TSS2_RC rc = TSS2_RC_SUCCESS;
            for (int busy = 0; busy <= kBusyRetries; ++busy) {
                rc = op(conn_->esys(), call);
                if (classify(rc) != RcKind::busy) break;
                std::this_thread::sleep_for(kBusyPause * (busy + 1));
            }
            const RcKind kind = classify(rc);
            if (kind == RcKind::ok) return {};
            const bool retryable = kind == RcKind::connection_lost || kind == RcKind::object_gone ||
                                   kind == RcKind::out_of_slots;
            if (kind == RcKind::connection_lost) disconnect(false);
            else if (retryable) drop_current();
            if (retryable && attempt == 0) continue;
            return rc_status(rc, what + ": " + call);
        }
    }

    Status connect() {
        auto c = Connection::open(config_.tcti);
        if (!c.ok()) return c.status();
        conn_ = std::move(c).value();
        srk_checked_ = false;
        read_tpm_info();
        return {};
    }

    // `orderly`: flush what we hold (shutting down); otherwise the connection is gone and
    // the TPM forgot our objects already.
    void disconnect(bool orderly) {
        if (orderly) {
            current_.session.flush();
            current_.key.flush();
        } else {
            current_.session.abandon();
            current_.key.abandon();
        }
        current_ = {};
        if (conn_ && srk_ != ESYS_TR_NONE) Esys_TR_Close(conn_->esys(), &srk_);
        srk_ = ESYS_TR_NONE;
        srk_checked_ = false;
        primary_contexts_.clear();
        conn_.reset();
    }

    void drop_current() {
        current_.session.flush();
        current_.key.flush();
        current_ = {};
    }

    void read_tpm_info() {
        TPMS_CAPABILITY_DATA* raw = nullptr;
        if (Esys_GetCapability(conn_->esys(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                               TPM2_PT_MANUFACTURER, 8, nullptr, &raw) != TSS2_RC_SUCCESS)
            return;
        EsysPtr<TPMS_CAPABILITY_DATA> data(raw);
        std::string vendor, manufacturer;
        for (uint32_t i = 0; i < data->data.tpmProperties.count; ++i) {
            const auto& p = data->data.tpmProperties.tpmProperty[i];
            auto chars = [](uint32_t v) {
                std::string s;
                for (int shift = 24; shift >= 0; shift -= 8) {
                    const char ch = static_cast<char>((v >> shift) & 0xFF);
                    if (ch >= 0x20 && ch < 0x7F) s += ch;
                }
                return s;
            };
            if (p.property == TPM2_PT_MANUFACTURER) manufacturer = chars(p.value);
            if (p.property >= TPM2_PT_VENDOR_STRING_1 && p.property <= TPM2_PT_VENDOR_STRING_4) vendor += chars(p.value);
        }
        std::string text = "TPM 2.0 " + manufacturer + " " + vendor;
        text.erase(std::unique(text.begin(), text.end(), [](char a, char b) { return a == ' ' && b == ' '; }),
                   text.end());
        while (!text.empty() && text.back() == ' ') text.pop_back();
        tpm_info_ = text;
    }

    // The parent for new keys: the persistent SRK when the TPM has one, else the derived primary.
    TSS2_RC default_parent(ESYS_CONTEXT* ctx, TPM2_HANDLE& handle, Loaded& primary, ESYS_TR& tr, const char*& call) {
        if (find_srk(ctx)) {
            handle = kSrkHandle;
            tr = srk_;
            return TSS2_RC_SUCCESS;
        }
        handle = TPM2_RH_OWNER;
        return parent_of(ctx, TPM2_RH_OWNER, primary, tr, call);
    }

    bool find_srk(ESYS_CONTEXT* ctx) {
        if (srk_checked_) return srk_ != ESYS_TR_NONE;
        srk_checked_ = true;
        // Ask first: TR_FromTPMPublic on an absent handle fails loudly in ESYS's log.
        TPMS_CAPABILITY_DATA* raw = nullptr;
        if (Esys_GetCapability(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES, kSrkHandle, 1, nullptr,
                               &raw) != TSS2_RC_SUCCESS)
            return false;
        EsysPtr<TPMS_CAPABILITY_DATA> handles(raw);
        if (handles->data.handles.count == 0 || handles->data.handles.handle[0] != kSrkHandle) return false;
        ESYS_TR tr = ESYS_TR_NONE;
        if (Esys_TR_FromTPMPublic(ctx, kSrkHandle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr) != TSS2_RC_SUCCESS)
            return false;
        // Only a storage key will do as a parent.
        TPM2B_PUBLIC* pub = nullptr;
        if (Esys_ReadPublic(ctx, tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, nullptr, nullptr) ==
            TSS2_RC_SUCCESS) {
            EsysPtr<TPM2B_PUBLIC> owner(pub);
            const TPMA_OBJECT a = pub->publicArea.objectAttributes;
            if ((a & TPMA_OBJECT_RESTRICTED) && (a & TPMA_OBJECT_DECRYPT)) {
                srk_ = tr;
                return true;
            }
        }
        Esys_TR_Close(ctx, &tr);
        return false;
    }

    // A key file's parent: a hierarchy means its primary from the storage template (created
    // now, flushed by `primary` when done); a persistent handle is used as it is.
    TSS2_RC parent_of(ESYS_CONTEXT* ctx, TPM2_HANDLE parent, Loaded& primary, ESYS_TR& tr, const char*& call) {
        if (parent == kSrkHandle && find_srk(ctx)) {
            tr = srk_;
            return TSS2_RC_SUCCESS;
        }
        if ((parent >> 24) == TPM2_HT_PERSISTENT) {
            call = "Esys_TR_FromTPMPublic (the key's persistent parent)";
            ESYS_TR t = ESYS_TR_NONE;
            TSS2_RC rc = Esys_TR_FromTPMPublic(ctx, parent, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &t);
            if (rc != TSS2_RC_SUCCESS) return rc;
            primary = Loaded::persistent(ctx, t);
            tr = t;
            return TSS2_RC_SUCCESS;
        }
        ESYS_TR hierarchy;
        switch (parent) {
            case TPM2_RH_OWNER: hierarchy = ESYS_TR_RH_OWNER; break;
            case TPM2_RH_ENDORSEMENT: hierarchy = ESYS_TR_RH_ENDORSEMENT; break;
            case TPM2_RH_PLATFORM: hierarchy = ESYS_TR_RH_PLATFORM; break;
            case TPM2_RH_NULL: hierarchy = ESYS_TR_RH_NULL; break;
            default: call = "finding the key's parent"; return TPM2_RC_HANDLE | TPM2_RC_1;
        }
        // A saved context of the primary reloads much faster than CreatePrimary derives it.
        if (auto saved = primary_contexts_.find(parent); saved != primary_contexts_.end()) {
            ESYS_TR t = ESYS_TR_NONE;
            if (Esys_ContextLoad(ctx, &saved->second, &t) == TSS2_RC_SUCCESS) {
                primary = Loaded(ctx, t);
                tr = t;
                return TSS2_RC_SUCCESS;
            }
            primary_contexts_.erase(saved);  // from before a TPM reset: derive it again
        }
        const TPM2B_PUBLIC tmpl = storage_primary_template();
        TPM2B_SENSITIVE_CREATE sensitive{};
        TPM2B_DATA outside{};
        TPML_PCR_SELECTION pcrs{};
        call = "Esys_CreatePrimary";
        ESYS_TR t = ESYS_TR_NONE;
        TSS2_RC rc = Esys_CreatePrimary(ctx, hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &tmpl,
                                        &outside, &pcrs, &t, nullptr, nullptr, nullptr, nullptr);
        if (rc != TSS2_RC_SUCCESS) return rc;
        primary = Loaded(ctx, t);
        tr = t;
        TPMS_CONTEXT* saved = nullptr;
        if (Esys_ContextSave(ctx, t, &saved) == TSS2_RC_SUCCESS) {
            EsysPtr<TPMS_CONTEXT> owner(saved);
            primary_contexts_[parent] = *saved;
        }
        return TSS2_RC_SUCCESS;
    }

    TSS2_RC start_salted_session(ESYS_CONTEXT* ctx, ESYS_TR salt_key, Loaded& session) {
        TPMT_SYM_DEF sym{};
        sym.algorithm = TPM2_ALG_AES;
        sym.keyBits.aes = 128;
        sym.mode.aes = TPM2_ALG_CFB;
        ESYS_TR s = ESYS_TR_NONE;
        TSS2_RC rc = Esys_StartAuthSession(ctx, salt_key, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                           nullptr, TPM2_SE_HMAC, &sym, TPM2_ALG_SHA256, &s);
        if (rc != TSS2_RC_SUCCESS) return rc;
        session = Loaded(ctx, s);
        // decrypt: the first command parameter (inSensitive, the digest) goes encrypted.
        return Esys_TRSess_SetAttributes(ctx, s, TPMA_SESSION_CONTINUESESSION | TPMA_SESSION_DECRYPT, 0xFF);
    }

    // Makes `label` the loaded key (flushing the previous one first, so we never hold more
    // than one key, plus its parent for the moment of the load).
    TSS2_RC load(ESYS_CONTEXT* ctx, const std::string& label, const KeyFile& file, const char*& call,
                 Status& problem) {
        if (current_.label == label && current_.key) return TSS2_RC_SUCCESS;
        drop_current();
        Loaded parent;
        ESYS_TR parent_tr = ESYS_TR_NONE;
        TSS2_RC rc = parent_of(ctx, file.parent, parent, parent_tr, call);
        if (rc != TSS2_RC_SUCCESS) return rc;
        call = "Esys_Load";
        ESYS_TR key = ESYS_TR_NONE;
        rc = Esys_Load(ctx, parent_tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &file.priv, &file.pub, &key);
        Current next;
        if (rc == TSS2_RC_SUCCESS) {
            next.key = Loaded(ctx, key);
            if (!file.empty_auth) {
                call = "Esys_StartAuthSession";
                rc = start_salted_session(ctx, parent_tr, next.session);
            }
        }
        if (rc != TSS2_RC_SUCCESS) {
            // TPM_RC_INTEGRITY and friends on Load: this blob is not for this TPM / parent.
            if (classify(rc) == RcKind::other)
                problem = Status{ErrorCode::device_error, "the TPM cannot load key " + label + " (" + call +
                                                              ": " + rc_text(rc) +
                                                              "); it was made by another TPM or under another parent"};
            return classify(rc) == RcKind::other ? TSS2_RC_SUCCESS : rc;
        }
        next.label = label;
        current_ = std::move(next);
        return TSS2_RC_SUCCESS;
    }

    Result<BackendKey> store_and_describe(const std::string& label, const KeyFile& file) {
        const std::string pem = encode_key_file_pem(file);
        if (pem.empty()) return Status{ErrorCode::internal, "cannot encode the key file"};
        if (auto s = store_.create(label, pem); !s.ok()) return s;
        described_.erase(label);
        return describe_locked(label, false);
    }

    // The cached description of a key, read from its file (and the TPM) on first use.
    Result<const Described*> cached(const std::string& label) {
        auto it = described_.find(label);
        if (it != described_.end()) return &it->second;
        auto key = describe_locked(label, false);
        if (!key.ok()) return key.status();
        return &described_.at(label);
    }

    // Reads the file, loads the key, reads its public area back from the TPM. `reread`:
    // consult the file even when cached (listing), keeping the cache if it is unchanged.
    Result<BackendKey> describe_locked(const std::string& label, bool reread) {
        auto it = described_.find(label);
        if (it != described_.end() && !reread) return it->second.key;
        auto blob = store_.read(label);
        if (!blob.ok()) {
            described_.erase(label);
            return blob.status();
        }
        if (it != described_.end() && it->second.blob == blob.value()) return it->second.key;
        auto file = parse_key_file(blob.value());
        if (!file.ok()) return Status{ErrorCode::device_error, "key file " + label + ": " + file.status().message};
        if (auto why = unusable_reason(file->pub.publicArea); !why.empty())
            return Status{ErrorCode::device_error, "key " + label + " is " + why};
        if (current_.label == label) drop_current();  // the file may have changed under the same name

        TPM2B_PUBLIC* pub_raw = nullptr;
        TPM2B_NAME* name_raw = nullptr;
        Status problem;
        Status s = run("reading key " + label, [&](ESYS_CONTEXT* ctx, const char*& call) -> TSS2_RC {
            TSS2_RC rc = load(ctx, label, file.value(), call, problem);
            if (rc != TSS2_RC_SUCCESS || !problem.ok()) return rc;
            call = "Esys_ReadPublic";
            Esys_Free(pub_raw);
            Esys_Free(name_raw);
            pub_raw = nullptr;
            name_raw = nullptr;
            return Esys_ReadPublic(ctx, current_.key.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub_raw,
                                   &name_raw, nullptr);
        }, problem);
        EsysPtr<TPM2B_PUBLIC> pub(pub_raw);
        EsysPtr<TPM2B_NAME> name(name_raw);
        if (!s.ok()) return s;
        if (!problem.ok()) return problem;

        const TPMT_PUBLIC& area = pub->publicArea;
        Described d;
        d.blob = std::move(blob).value();
        d.file = file.value();
        d.key.label = label;
        d.key.type = *key_type_of(area);
        auto spki = spki_of(area);
        if (!spki.ok()) return spki.status();
        d.key.spki = std::move(spki).value();
        d.key.attributes = object_attributes(area.objectAttributes);
        d.key.attributes.push_back({"parent", hex32(file->parent) + (file->parent == TPM2_RH_OWNER
                                                                          ? " (owner hierarchy primary)"
                                                                          : file->parent == kSrkHandle ? " (SRK)" : "")});
        d.key.attributes.push_back({"emptyAuth", file->empty_auth ? "true" : "false"});
        d.key.attributes.push_back({"tpm_name", to_hex({name->name, name->size})});
        if (!key_type_is_ec(d.key.type)) {
            std::string verdict = check_pss(label, d);
            d.key.attributes.push_back({"tls13_rsa_pss", verdict});
        }
        d.key.schemes = schemes_for(area, d.key.type, d.pss_ok);
        BackendKey out = d.key;
        described_[label] = std::move(d);
        return out;
    }

    // Signs a fixed digest with RSA-PSS/SHA-256 and checks it with salt = hash length.
    std::string check_pss(const std::string& label, Described& d) {
        const TPMI_ALG_ASYM_SCHEME fixed = d.file.pub.publicArea.parameters.rsaDetail.scheme.scheme;
        if (fixed != TPM2_ALG_NULL && fixed != TPM2_ALG_RSAPSS) return "no: the key is fixed to another scheme";
        TPMT_SIG_SCHEME scheme{};
        scheme.scheme = TPM2_ALG_RSAPSS;
        scheme.details.rsapss.hashAlg = TPM2_ALG_SHA256;
        std::vector<uint8_t> digest(SHA256_DIGEST_LENGTH);
        static constexpr char kProbe[] = "keyward: does this TPM's RSA-PSS salt equal the hash length?";
        SHA256(reinterpret_cast<const unsigned char*>(kProbe), sizeof kProbe - 1, digest.data());
        auto sig = sign_locked(label, d.file, scheme, digest);
        if (!sig.ok()) return "unknown: the test signature failed: " + sig.status().message;
        if (pss_salt_is_hash_length(d.key.spki, digest, sig.value())) {
            d.pss_ok = true;
            return "ok";
        }
        return "no: this TPM's RSA-PSS salt is not the hash length, which TLS 1.3 requires; rsa_pss_* not offered";
    }

    Result<std::vector<uint8_t>> sign_locked(const std::string& label, const KeyFile& file,
                                             const TPMT_SIG_SCHEME& scheme, std::span<const uint8_t> digest) {
        Auth auth;
        std::array<uint8_t, SHA256_DIGEST_LENGTH> fingerprint{};
        if (!file.empty_auth) {
            // Without an auth file the value is taken to be empty: tpm2-tools writes emptyAuth
            // FALSE for keys made without one. The TPM decides, once (see rejected_auth_).
            if (!config_.auth_file.empty())
                if (auto s = read_auth(config_.auth_file, auth); !s.ok()) return s;
            fingerprint = auth.fingerprint();
            auto rejected = rejected_auth_.find(label);
            if (rejected != rejected_auth_.end() && rejected->second == fingerprint) return auth_rejected(label);
        }
        TPM2B_DIGEST tpm_digest{};
        tpm_digest.size = static_cast<UINT16>(digest.size());
        std::memcpy(tpm_digest.buffer, digest.data(), digest.size());
        TPMT_TK_HASHCHECK ticket{};
        ticket.tag = TPM2_ST_HASHCHECK;
        ticket.hierarchy = TPM2_RH_NULL;
        TPMT_SIGNATURE* sig_raw = nullptr;
        Status problem;
        TSS2_RC sign_rc = TSS2_RC_SUCCESS;
        Status s = run("signing with key " + label, [&](ESYS_CONTEXT* ctx, const char*& call) -> TSS2_RC {
            TSS2_RC rc = load(ctx, label, file, call, problem);
            if (rc != TSS2_RC_SUCCESS || !problem.ok()) return rc;
            ESYS_TR shandle = ESYS_TR_PASSWORD;
            if (!file.empty_auth) {
                call = "Esys_TR_SetAuth";
                rc = Esys_TR_SetAuth(ctx, current_.key.get(), &auth.value);
                if (rc != TSS2_RC_SUCCESS) return rc;
                shandle = current_.session.get();
            }
            call = "Esys_Sign";
            Esys_Free(sig_raw);
            sig_raw = nullptr;
            sign_rc = Esys_Sign(ctx, current_.key.get(), shandle, ESYS_TR_NONE, ESYS_TR_NONE, &tpm_digest, &scheme,
                                &ticket, &sig_raw);
            return sign_rc;
        }, problem);
        EsysPtr<TPMT_SIGNATURE> sig(sig_raw);
        if (!s.ok()) {
            if (classify(sign_rc) == RcKind::auth_failed) {
                rejected_auth_[label] = fingerprint;
                return auth_rejected(label);
            }
            return s;
        }
        if (!problem.ok()) return problem;
        rejected_auth_.erase(label);
        return signature_bytes(*sig);
    }

    Status auth_rejected(const std::string& label) const {
        if (config_.auth_file.empty())
            return Status{ErrorCode::device_error,
                          "key " + label + " needs an auth value (the TPM refused an empty one: TPM_RC_AUTH_FAIL); "
                          "set auth_file for this token to the file holding it"};
        return Status{ErrorCode::device_error,
                      "the TPM rejected the auth value in " + config_.auth_file + " for key " + label +
                          " (TPM_RC_AUTH_FAIL); it is not tried again until that file changes, because every "
                          "failure counts toward the TPM's dictionary-attack lockout"};
    }

    const TpmConfig config_;
    const KeyStore store_;
    mutable std::mutex mu_;
    std::unique_ptr<Connection> conn_;
    std::string tpm_info_;
    ESYS_TR srk_ = ESYS_TR_NONE;  // the persistent SRK, when present (occupies no slot)
    bool srk_checked_ = false;
    Current current_;
    std::map<TPM2_HANDLE, TPMS_CONTEXT> primary_contexts_;  // hierarchy -> its saved primary
    std::map<std::string, Described> described_;
    std::map<std::string, std::array<uint8_t, SHA256_DIGEST_LENGTH>> rejected_auth_;
};

}  // namespace

Result<std::unique_ptr<KeyBackend>> open_backend(const TpmConfig& config) {
    if (config.tcti.empty()) return Status{ErrorCode::invalid_argument, "no TCTI configured for the TPM token"};
    auto store = KeyStore::open(config.key_dir);
    if (!store.ok()) return store.status();
    auto backend = std::make_unique<TpmBackend>(config, std::move(store).value());
    // A TPM that is not reachable yet (swtpm starting) is reported by health(), not fatal.
    (void)backend->health();
    return std::unique_ptr<KeyBackend>(std::move(backend));
}

}  // namespace keyward::tpm
