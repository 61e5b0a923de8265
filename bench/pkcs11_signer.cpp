// PKCS#11 signing straight into a module: the baseline (SoftHSM2 in-process) and the
// forwarding alternative (p11-kit-client.so talking to `p11-kit server`).
#include <dlfcn.h>
#include <openssl/crypto.h>
#include <p11-kit/pkcs11.h>

#include <cstring>
#include <mutex>

#include "bench/signers.hpp"

namespace keyward::bench {
namespace {

// DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1): CKM_RSA_PKCS signs prefix||hash.
constexpr unsigned char kSha256Prefix[19] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                             0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};

std::string rv_text(const char* what, CK_RV rv) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s failed: CKR 0x%lx", what, static_cast<unsigned long>(rv));
    return buf;
}

std::string token_label(const CK_TOKEN_INFO& ti) {
    std::string l(reinterpret_cast<const char*>(ti.label), sizeof ti.label);
    while (!l.empty() && l.back() == ' ') l.pop_back();
    return l;
}

class Pkcs11Module {
public:
    ~Pkcs11Module() {
        if (f_ != nullptr && initialized_) f_->C_Finalize(nullptr);
        if (handle_ != nullptr) dlclose(handle_);
    }

    bool open(const std::string& path, std::string& error) {
        handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (handle_ == nullptr) {
            error = std::string("dlopen: ") + dlerror();
            return false;
        }
        auto gfl = reinterpret_cast<CK_C_GetFunctionList>(dlsym(handle_, "C_GetFunctionList"));
        if (gfl == nullptr || gfl(&f_) != CKR_OK) {
            error = "no C_GetFunctionList in " + path;
            return false;
        }
        CK_C_INITIALIZE_ARGS args{};
        args.flags = CKF_OS_LOCKING_OK;
        CK_RV rv = f_->C_Initialize(&args);
        if (rv != CKR_OK) {
            error = rv_text("C_Initialize", rv);
            return false;
        }
        initialized_ = true;
        return true;
    }

    CK_FUNCTION_LIST* f() const { return f_; }

private:
    void* handle_ = nullptr;
    CK_FUNCTION_LIST* f_ = nullptr;
    bool initialized_ = false;
};

class Pkcs11ThreadSigner : public ThreadSigner {
public:
    Pkcs11ThreadSigner(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, KeyKind kind)
            : f_(f), session_(s), key_(key) {
        if (kind == KeyKind::ec_p256) {
            mech_.mechanism = CKM_ECDSA;
            std::memcpy(data_, kDigest, sizeof kDigest);
            data_len_ = sizeof kDigest;
        } else {
            mech_.mechanism = CKM_RSA_PKCS;
            std::memcpy(data_, kSha256Prefix, sizeof kSha256Prefix);
            std::memcpy(data_ + sizeof kSha256Prefix, kDigest, sizeof kDigest);
            data_len_ = sizeof kSha256Prefix + sizeof kDigest;
        }
    }
    ~Pkcs11ThreadSigner() override { f_->C_CloseSession(session_); }

    bool sign_once(std::string& error) override {
        unsigned char sig[512];
        size_t len = sizeof sig;
        return sign_digest(kDigest, sig, len, error);
    }

    bool sign_digest(const unsigned char* digest, unsigned char* sig, size_t& sig_len, std::string& error) override {
        std::memcpy(data_ + data_len_ - sizeof kDigest, digest, sizeof kDigest);
        CK_RV rv = f_->C_SignInit(session_, &mech_, key_);
        if (rv != CKR_OK) {
            error = rv_text("C_SignInit", rv);
            return false;
        }
        CK_ULONG len = sig_len;
        rv = f_->C_Sign(session_, data_, data_len_, sig, &len);
        if (rv != CKR_OK) {
            error = rv_text("C_Sign", rv);
            return false;
        }
        sig_len = len;
        return true;
    }

private:
    CK_FUNCTION_LIST* f_;
    CK_SESSION_HANDLE session_;
    CK_OBJECT_HANDLE key_;
    CK_MECHANISM mech_{};
    unsigned char data_[64]{};
    CK_ULONG data_len_ = 0;
};

class Pkcs11Signer : public Signer {
public:
    Pkcs11Signer(KeyKind kind) : kind_(kind) {}

    bool setup(const Options& o, std::string& error) {
        const std::string module = o.get("module"), token = o.get("token"), key = o.get("key");
        if (module.empty() || token.empty() || key.empty() || !o.has("pin-file")) {
            error = "direct/p11kit need --module, --token, --key and --pin-file";
            return false;
        }
        auto pin = read_secret_file(o.get("pin-file"));
        if (!pin) {
            error = "cannot read the PIN file";
            return false;
        }
        key_label_ = key;
        bool ok = module_.open(module, error) && find_slot(token, error) && login(*pin, error);
        OPENSSL_cleanse(pin->data(), pin->size());
        return ok;
    }

    std::unique_ptr<ThreadSigner> for_thread(std::string& error) override {
        CK_SESSION_HANDLE s = 0;
        CK_RV rv;
        {
            std::lock_guard lock(mu_);  // session creation only; signing never takes it
            rv = f()->C_OpenSession(slot_, CKF_SERIAL_SESSION, nullptr, nullptr, &s);
        }
        if (rv != CKR_OK) {
            error = rv_text("C_OpenSession", rv);
            return nullptr;
        }
        return std::make_unique<Pkcs11ThreadSigner>(f(), s, key_, kind_);
    }

private:
    CK_FUNCTION_LIST* f() const { return module_.f(); }

    bool find_slot(const std::string& label, std::string& error) {
        CK_ULONG n = 0;
        CK_RV rv = f()->C_GetSlotList(CK_TRUE, nullptr, &n);
        if (rv != CKR_OK) {
            error = rv_text("C_GetSlotList", rv);
            return false;
        }
        std::vector<CK_SLOT_ID> slots(n ? n : 1);
        if ((rv = f()->C_GetSlotList(CK_TRUE, slots.data(), &n)) != CKR_OK) {
            error = rv_text("C_GetSlotList", rv);
            return false;
        }
        for (CK_ULONG i = 0; i < n; ++i) {
            CK_TOKEN_INFO ti{};
            if (f()->C_GetTokenInfo(slots[i], &ti) == CKR_OK && token_label(ti) == label) {
                slot_ = slots[i];
                return true;
            }
        }
        error = "token " + label + " not found";
        return false;
    }

    // Logs in on a session kept open for the whole run (login state belongs to the
    // application, and it ends when its last session closes) and finds the key.
    bool login(std::string& pin, std::string& error) {
        CK_RV rv = f()->C_OpenSession(slot_, CKF_SERIAL_SESSION, nullptr, nullptr, &login_session_);
        if (rv != CKR_OK) {
            error = rv_text("C_OpenSession", rv);
            return false;
        }
        rv = f()->C_Login(login_session_, CKU_USER, reinterpret_cast<CK_UTF8CHAR_PTR>(pin.data()), pin.size());
        if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
            error = rv_text("C_Login", rv);
            return false;
        }
        CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
        CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, key_label_.data(), key_label_.size()}};
        CK_ULONG count = 0;
        if ((rv = f()->C_FindObjectsInit(login_session_, tmpl, 2)) != CKR_OK) {
            error = rv_text("C_FindObjectsInit", rv);
            return false;
        }
        rv = f()->C_FindObjects(login_session_, &key_, 1, &count);
        f()->C_FindObjectsFinal(login_session_);
        if (rv != CKR_OK || count == 0) {
            error = "private key " + key_label_ + " not found";
            return false;
        }
        return true;
    }

    KeyKind kind_;
    Pkcs11Module module_;
    CK_SLOT_ID slot_ = 0;
    CK_SESSION_HANDLE login_session_ = 0;
    CK_OBJECT_HANDLE key_ = 0;
    std::string key_label_;
    std::mutex mu_;
};

}  // namespace

std::unique_ptr<Signer> make_pkcs11_signer(const Options& o, KeyKind kind, std::string& error) {
    auto s = std::make_unique<Pkcs11Signer>(kind);
    if (!s->setup(o, error)) return nullptr;
    return s;
}

}  // namespace keyward::bench
