// TpmBackend: keys wrapped by a TPM 2.0 under its storage root key, kept as TSS2 PRIVATE KEY
// files, signed through ESAPI. The KeyBackend side lives here: key files in, descriptions and
// signatures out. The TPM connection, its recovery, parents and sessions are TpmSession's
// (tpm/session.hpp), which schemes a key supports is tpm/schemes.hpp's, the auth value file
// tpm/auth_file.hpp's.
//
// Threading: every entry point takes mu_ and holds it for the whole operation, so the
// TpmSession, the description cache and the rejected-auth map see one thread at a time
// (max_concurrency() is 1: the TPM runs one command at a time anyway).
#include <openssl/crypto.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>

#include "core/hex.hpp"
#include "tpm/auth_file.hpp"
#include "tpm/esys.hpp"
#include "tpm/key_file.hpp"
#include "tpm/key_store.hpp"
#include "tpm/public_key.hpp"
#include "tpm/rc.hpp"
#include "tpm/salted_parent.hpp"
#include "tpm/schemes.hpp"
#include "tpm/session.hpp"
#include "tpm/tpm_backend.hpp"

namespace keyward::tpm {
namespace {

std::string hex32(uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", v);
    return buf;
}

class TpmBackend final : public KeyBackend {
public:
    TpmBackend(TpmConfig config, KeyStore store)
            : config_(std::move(config)), store_(std::move(store)), tpm_(config_.tcti) {}

    ~TpmBackend() override {
        std::lock_guard lock(mu_);
        tpm_.disconnect(true);
    }

    std::string_view kind() const noexcept override { return "tpm"; }
    size_t max_concurrency() const noexcept override { return 1; }

    std::string description() const override {
        std::lock_guard lock(mu_);
        return (tpm_.info().empty() ? std::string("TPM 2.0") : tpm_.info()) + " via " + config_.tcti;
    }

    DeviceHealth health() override {
        std::lock_guard lock(mu_);
        if (tpm_.connected()) return DeviceHealth::present;
        return tpm_.connect().ok() ? DeviceHealth::present : DeviceHealth::removed;
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

        AuthValue auth;
        if (!config_.auth_file.empty())
            if (auto s = read_auth_file(config_.auth_file, auth); !s.ok()) return s;

        KeyFile made;
        made.empty_auth = config_.auth_file.empty();
        Status problem;
        Status s = tpm_.run(
            "creating " + std::string(key_type_name(type)) + " key " + label,
            [&](ESYS_CONTEXT* ctx, const char*& call) -> TSS2_RC {
                SaltedParent parent;
                TSS2_RC rc = parent.open(tpm_, ctx, call);
                if (rc != TSS2_RC_SUCCESS) return rc;
                // The new key's auth value travels in inSensitive: encrypt it with a session
                // salted to the parent, so it never crosses the bus in clear.
                if (!made.empty_auth && (rc = parent.start_session(ctx, TPMA_SESSION_DECRYPT, call)) != TSS2_RC_SUCCESS)
                    return rc;
                TPM2B_SENSITIVE_CREATE sensitive{};
                sensitive.sensitive.userAuth = auth.value;
                rc = parent.create(ctx, sensitive, *tmpl, made.pub, made.priv, call);
                if (rc != TSS2_RC_SUCCESS) return rc;
                made.parent = parent.handle();
                return TSS2_RC_SUCCESS;
            },
            problem);
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
        Status s = tpm_.run(
            "loading the imported key",
            [&](ESYS_CONTEXT* ctx, const char*& call) -> TSS2_RC {
                return tpm_.load(ctx, "\n" + label, parsed.value(), call, problem);
            },
            problem);
        tpm_.drop_loaded();
        if (!s.ok()) return Status{s.code, s.message + " (was it made on this TPM?)"};
        if (!problem.ok()) return problem;
        return store_and_describe(label, parsed.value());
    }

    Status destroy(const std::string& label) override {
        std::lock_guard lock(mu_);
        if (tpm_.loaded_label() == label) tpm_.drop_loaded();
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
            return Status{ErrorCode::unsupported_scheme, "key " + label + " (" +
                                                             std::string(key_type_name(d.key.type)) +
                                                             ") cannot sign with " + std::string(info->name) +
                                                             (info->family == SchemeFamily::rsa_pss && !d.pss_ok
                                                                  ? " on this TPM (see its tls13_rsa_pss attribute)"
                                                                  : "")};
        return sign_locked(label, d.file, tpm_sig_scheme(*info), digest);
    }

private:
    // One key's cached description: the file's bytes (a changed file is read again), the
    // parsed file, what the TPM reported for it, and whether its RSA-PSS is usable.
    struct Described {
        std::vector<uint8_t> blob;
        KeyFile file;
        BackendKey key;
        bool pss_ok = false;
    };

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
        if (tpm_.loaded_label() == label) tpm_.drop_loaded();  // the file may have changed under the same name

        TPM2B_PUBLIC* pub_raw = nullptr;
        TPM2B_NAME* name_raw = nullptr;
        Status problem;
        Status s = tpm_.run(
            "reading key " + label,
            [&](ESYS_CONTEXT* ctx, const char*& call) -> TSS2_RC {
                TSS2_RC rc = tpm_.load(ctx, label, file.value(), call, problem);
                if (rc != TSS2_RC_SUCCESS || !problem.ok()) return rc;
                call = "Esys_ReadPublic";
                Esys_Free(pub_raw);
                Esys_Free(name_raw);
                pub_raw = nullptr;
                name_raw = nullptr;
                return Esys_ReadPublic(ctx, tpm_.loaded_key(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub_raw,
                                       &name_raw, nullptr);
            },
            problem);
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
        d.key.attributes.push_back(
            {"parent", hex32(file->parent) + (file->parent == TPM2_RH_OWNER ? " (owner hierarchy primary)"
                                              : file->parent == kSrkHandle  ? " (SRK)"
                                                                            : "")});
        d.key.attributes.push_back({"emptyAuth", file->empty_auth ? "true" : "false"});
        d.key.attributes.push_back({"tpm_name", to_hex({name->name, name->size})});
        if (!key_type_is_ec(d.key.type)) {
            // Signs a fixed digest with RSA-PSS/SHA-256 and checks it with salt = hash length.
            const PssVerdict pss = probe_rsa_pss(d.file.pub.publicArea, d.key.spki,
                                                 [&](const TPMT_SIG_SCHEME& scheme, std::span<const uint8_t> digest) {
                                                     return sign_locked(label, d.file, scheme, digest);
                                                 });
            d.pss_ok = pss.ok;
            d.key.attributes.push_back({"tls13_rsa_pss", pss.text});
        }
        d.key.schemes = schemes_for(area, d.key.type, d.pss_ok);
        BackendKey out = d.key;
        described_[label] = std::move(d);
        return out;
    }

    Result<std::vector<uint8_t>> sign_locked(const std::string& label, const KeyFile& file,
                                             const TPMT_SIG_SCHEME& scheme, std::span<const uint8_t> digest) {
        AuthValue auth;
        AuthFingerprint fingerprint{};
        if (!file.empty_auth) {
            // Without an auth file the value is taken to be empty: tpm2-tools writes emptyAuth
            // FALSE for keys made without one. The TPM decides, once (see rejected_auth_).
            if (!config_.auth_file.empty())
                if (auto s = read_auth_file(config_.auth_file, auth); !s.ok()) return s;
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
        Status s = tpm_.run(
            "signing with key " + label,
            [&](ESYS_CONTEXT* ctx, const char*& call) -> TSS2_RC {
                TSS2_RC rc = tpm_.load(ctx, label, file, call, problem);
                if (rc != TSS2_RC_SUCCESS || !problem.ok()) return rc;
                ESYS_TR shandle = ESYS_TR_PASSWORD;
                if (!file.empty_auth) {
                    call = "Esys_TR_SetAuth";
                    rc = Esys_TR_SetAuth(ctx, tpm_.loaded_key(), &auth.value);
                    if (rc != TSS2_RC_SUCCESS) return rc;
                    shandle = tpm_.loaded_session();
                }
                call = "Esys_Sign";
                Esys_Free(sig_raw);
                sig_raw = nullptr;
                sign_rc = Esys_Sign(ctx, tpm_.loaded_key(), shandle, ESYS_TR_NONE, ESYS_TR_NONE, &tpm_digest, &scheme,
                                    &ticket, &sig_raw);
                return sign_rc;
            },
            problem);
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
                          "key " + label +
                              " needs an auth value (the TPM refused an empty one: TPM_RC_AUTH_FAIL); "
                              "set auth_file for this token to the file holding it"};
        return Status{ErrorCode::device_error,
                      "the TPM rejected the auth value in " + config_.auth_file + " for key " + label +
                          " (TPM_RC_AUTH_FAIL); it is not tried again until that file changes, because every "
                          "failure counts toward the TPM's dictionary-attack lockout"};
    }

    const TpmConfig config_;
    const KeyStore store_;
    mutable std::mutex mu_;  // guards everything below
    TpmSession tpm_;
    // The description cache: what each key file said and the TPM answered for it.
    std::map<std::string, Described> described_;
    // The fingerprint of the auth value the TPM rejected, per key: that value is not tried
    // again (each failure counts toward the dictionary-attack lockout).
    std::map<std::string, AuthFingerprint> rejected_auth_;
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
