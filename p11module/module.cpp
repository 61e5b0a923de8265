#include "p11module/module.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <openssl/sha.h>

#include "core/ecdsa_sig.hpp"
#include "core/hex.hpp"

namespace keyward::p11module {

void debug_report(std::string_view message) noexcept {
    static const bool enabled = [] {
        const char* v = std::getenv("KEYWARD_PKCS11_DEBUG");
        return v && std::strcmp(v, "1") == 0;
    }();
    if (enabled) std::fprintf(stderr, "keyward-pkcs11: %.*s\n", static_cast<int>(message.size()), message.data());
}

CK_RV rv_for(const Status& status) noexcept {
    switch (status.code) {
        case ErrorCode::ok: return CKR_OK;
        case ErrorCode::agent_unreachable:
        case ErrorCode::connection_lost:
        case ErrorCode::device_unavailable:
        case ErrorCode::no_such_token: return CKR_DEVICE_REMOVED;
        case ErrorCode::timeout:
        case ErrorCode::device_error:
        case ErrorCode::protocol_error: return CKR_DEVICE_ERROR;
        case ErrorCode::no_such_key: return CKR_KEY_HANDLE_INVALID;
        case ErrorCode::access_denied:
        case ErrorCode::unsupported_scheme: return CKR_KEY_FUNCTION_NOT_PERMITTED;
        case ErrorCode::invalid_argument: return CKR_DATA_INVALID;
        default: return CKR_FUNCTION_FAILED;
    }
}

namespace {

CK_RV report(const Status& status) {
    debug_report(std::string(error_code_name(status.code)) + ": " + status.message);
    return rv_for(status);
}

std::string serial_for(const std::string& socket_path) {
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const uint8_t*>(socket_path.data()), socket_path.size(), digest);
    return to_hex(std::span<const uint8_t>(digest, 8));
}

// Larger than any DigestInfo (83 bytes for SHA-512) or hash this module signs.
constexpr size_t kMaxPrehashedInput = 1024;

bool key_has(const Object& key, Scheme scheme) {
    return std::find(key.schemes.begin(), key.schemes.end(), scheme) != key.schemes.end();
}

std::optional<Scheme> ecdsa_scheme_of(const Object& key) {
    for (auto s : key.schemes)
        if (const SchemeInfo* i = scheme_info(s); i && i->family == SchemeFamily::ecdsa) return s;
    return std::nullopt;
}

}  // namespace

Module::Module(ClientOptions options) : client_(std::move(options)), serial_(serial_for(client_.socket_path())) {}

bool Module::agent_present() { return client_.connect().ok(); }

CK_RV Module::refresh_objects() {
    auto keys = client_.list_keys();
    if (!keys.ok()) return report(keys.status());
    std::vector<Object> fresh;
    for (const auto& listed : keys.value()) {
        // GET_KEY carries the certificates LIST_KEYS leaves out.
        auto key = client_.get_key(listed.name);
        if (!key.ok()) {
            // Gone (or no longer ours) between the two calls: it is simply not there.
            if (key.status().code == ErrorCode::no_such_key || key.status().code == ErrorCode::access_denied) continue;
            return report(key.status());
        }
        auto objects = objects_for_key(key.value());
        if (!objects.ok()) {
            // One key this module cannot describe must not hide the others.
            debug_report(objects.status().message);
            continue;
        }
        for (auto& o : objects.value()) fresh.push_back(std::move(o));
    }
    std::lock_guard lock(objects_mutex_);
    std::unordered_map<CK_OBJECT_HANDLE, std::shared_ptr<const Object>> table;
    for (auto& o : fresh) {
        auto [it, inserted] = handle_of_identity_.try_emplace(o.identity, next_object_);
        if (inserted) ++next_object_;
        table[it->second] = std::make_shared<const Object>(std::move(o));
    }
    // An operation already under way keeps its object (shared_ptr) even when it went away.
    objects_ = std::move(table);
    return CKR_OK;
}

std::shared_ptr<const Object> Module::object(CK_OBJECT_HANDLE handle) const {
    std::lock_guard lock(objects_mutex_);
    auto it = objects_.find(handle);
    return it == objects_.end() ? nullptr : it->second;
}

std::vector<CK_OBJECT_HANDLE> Module::matching(std::span<const CK_ATTRIBUTE> tmpl) const {
    std::lock_guard lock(objects_mutex_);
    std::vector<CK_OBJECT_HANDLE> out;
    for (const auto& [handle, o] : objects_)
        if (o->matches(tmpl)) out.push_back(handle);
    std::sort(out.begin(), out.end());
    return out;
}

CK_RV Module::open_session(CK_FLAGS flags, CK_SESSION_HANDLE& out) {
    auto s = std::make_shared<Session>();
    s->flags = flags;
    std::lock_guard lock(sessions_mutex_);
    out = next_session_++;
    sessions_.emplace(out, std::move(s));
    return CKR_OK;
}

std::shared_ptr<Session> Module::session(CK_SESSION_HANDLE handle) const {
    std::lock_guard lock(sessions_mutex_);
    auto it = sessions_.find(handle);
    return it == sessions_.end() ? nullptr : it->second;
}

CK_RV Module::close_session(CK_SESSION_HANDLE handle) {
    std::lock_guard lock(sessions_mutex_);
    if (sessions_.erase(handle) == 0) return CKR_SESSION_HANDLE_INVALID;
    if (sessions_.empty()) logged_in = false;
    return CKR_OK;
}

void Module::close_all_sessions() {
    std::lock_guard lock(sessions_mutex_);
    sessions_.clear();
    logged_in = false;
}

size_t Module::session_count(bool rw_only) const {
    std::lock_guard lock(sessions_mutex_);
    if (!rw_only) return sessions_.size();
    return static_cast<size_t>(std::count_if(sessions_.begin(), sessions_.end(),
                                             [](const auto& e) { return (e.second->flags & CKF_RW_SESSION) != 0; }));
}

CK_RV Module::sign_init(Session& s, const CK_MECHANISM& mechanism, CK_OBJECT_HANDLE key_handle) {
    if (s.sign) return CKR_OPERATION_ACTIVE;
    const MechanismInfo* m = find_mechanism(mechanism.mechanism);
    if (!m) return CKR_MECHANISM_INVALID;
    auto key = object(key_handle);
    if (!key) return CKR_KEY_HANDLE_INVALID;
    if (key->object_class != CKO_PRIVATE_KEY) return CKR_KEY_TYPE_INCONSISTENT;
    if (mechanism_is_ec(*m) != key->is_ec) return CKR_KEY_TYPE_INCONSISTENT;

    SignOperation op;
    op.key = std::move(key);
    op.mechanism = m;
    if (m->kind == MechanismKind::pss_prehashed || m->kind == MechanismKind::pss_hashing) {
        op.pss_scheme = pss_scheme_from_params(*m, mechanism.pParameter, mechanism.ulParameterLen);
        if (!op.pss_scheme) return CKR_MECHANISM_PARAM_INVALID;
        // A key whose device cannot make PSS signatures with salt = hash length says so.
        if (!key_has(*op.key, *op.pss_scheme)) return CKR_MECHANISM_INVALID;
    } else if (mechanism.ulParameterLen != 0) {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    if (m->kind == MechanismKind::rsa_pkcs1_hashing) {
        auto scheme = rsa_scheme_for(SchemeFamily::rsa_pkcs1, m->digest_size);
        if (!scheme || !key_has(*op.key, *scheme)) return CKR_MECHANISM_INVALID;
    }
    if (m->kind == MechanismKind::ecdsa_prehashed || m->kind == MechanismKind::ecdsa_hashing) {
        if (!ecdsa_scheme_of(*op.key)) return CKR_MECHANISM_INVALID;
    }
    if (mechanism_hashes(*m)) {
        ossl::Md md(EVP_MD_fetch(nullptr, std::string(m->digest).c_str(), "provider=default"));
        op.hash.reset(EVP_MD_CTX_new());
        if (!md || !op.hash || EVP_DigestInit_ex(op.hash.get(), md.get(), nullptr) != 1) return CKR_HOST_MEMORY;
    }
    s.sign = std::move(op);
    return CKR_OK;
}

CK_RV Module::sign(Session& s, std::span<const uint8_t> data, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
    if (!s.sign) return CKR_OPERATION_NOT_INITIALIZED;
    SignOperation& op = *s.sign;
    if (op.multi_part) return CKR_OPERATION_ACTIVE;
    if (!out || *out_len < op.key->signature_size) {
        // A size question (or a buffer too small) leaves the operation as it was.
        const CK_RV rv = out ? CKR_BUFFER_TOO_SMALL : CKR_OK;
        *out_len = op.key->signature_size;
        return rv;
    }
    if (mechanism_hashes(*op.mechanism)) {
        std::vector<uint8_t> hash(static_cast<size_t>(EVP_MD_CTX_get_size(op.hash.get())));
        unsigned int n = 0;
        if (EVP_DigestUpdate(op.hash.get(), data.data(), data.size()) != 1 ||
            EVP_DigestFinal_ex(op.hash.get(), hash.data(), &n) != 1) {
            s.sign.reset();
            return CKR_FUNCTION_FAILED;
        }
        return sign_prepared(s, hash, out, out_len);
    }
    return sign_prepared(s, data, out, out_len);
}

CK_RV Module::sign_update(Session& s, std::span<const uint8_t> data) {
    if (!s.sign) return CKR_OPERATION_NOT_INITIALIZED;
    SignOperation& op = *s.sign;
    op.multi_part = true;
    if (mechanism_hashes(*op.mechanism)) {
        if (EVP_DigestUpdate(op.hash.get(), data.data(), data.size()) != 1) {
            s.sign.reset();
            return CKR_FUNCTION_FAILED;
        }
        return CKR_OK;
    }
    // The prehashed mechanisms are single-part in PKCS#11 v2.40, but some consumers
    // (pkcs11-tool among them) feed them in parts anyway: a hash or DigestInfo is small, so
    // collect it and refuse anything that could not be one.
    if (op.input.size() + data.size() > kMaxPrehashedInput) {
        s.sign.reset();
        return CKR_DATA_LEN_RANGE;
    }
    op.input.insert(op.input.end(), data.begin(), data.end());
    return CKR_OK;
}

CK_RV Module::sign_final(Session& s, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
    if (!s.sign) return CKR_OPERATION_NOT_INITIALIZED;
    SignOperation& op = *s.sign;
    if (!out || *out_len < op.key->signature_size) {
        const CK_RV rv = out ? CKR_BUFFER_TOO_SMALL : CKR_OK;
        *out_len = op.key->signature_size;
        return rv;
    }
    if (!mechanism_hashes(*op.mechanism)) {
        const std::vector<uint8_t> input = std::move(op.input);
        return sign_prepared(s, input, out, out_len);
    }
    std::vector<uint8_t> hash(static_cast<size_t>(EVP_MD_CTX_get_size(op.hash.get())));
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(op.hash.get(), hash.data(), &n) != 1) {
        s.sign.reset();
        return CKR_FUNCTION_FAILED;
    }
    return sign_prepared(s, hash, out, out_len);
}

CK_RV Module::sign_prepared(Session& s, std::span<const uint8_t> input, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
    // Whatever happens now, this operation is over (PKCS#11 v2.40 §5.11 C_Sign).
    SignOperation op = std::move(*s.sign);
    s.sign.reset();
    const Object& key = *op.key;

    Scheme scheme{};
    std::vector<uint8_t> digest;
    switch (op.mechanism->kind) {
        case MechanismKind::ecdsa_prehashed:
        case MechanismKind::ecdsa_hashing: {
            if (input.empty()) return CKR_DATA_LEN_RANGE;
            scheme = *ecdsa_scheme_of(key);
            digest = ecdsa_input_for_curve(input, scheme_info(scheme)->digest_size);
            break;
        }
        case MechanismKind::rsa_digest_info: {
            auto parsed = parse_digest_info(input);
            if (!parsed) {
                debug_report("CKM_RSA_PKCS: the input is not a SHA-256/384/512 DigestInfo; the agent signs no other");
                return CKR_DATA_INVALID;
            }
            scheme = parsed->scheme;
            digest.assign(parsed->digest.begin(), parsed->digest.end());
            break;
        }
        case MechanismKind::rsa_pkcs1_hashing:
            scheme = *rsa_scheme_for(SchemeFamily::rsa_pkcs1, input.size());
            digest.assign(input.begin(), input.end());
            break;
        case MechanismKind::pss_prehashed:
        case MechanismKind::pss_hashing:
            scheme = *op.pss_scheme;
            if (input.size() != scheme_info(scheme)->digest_size) return CKR_DATA_LEN_RANGE;
            digest.assign(input.begin(), input.end());
            break;
    }
    if (!key_has(key, scheme)) return CKR_KEY_FUNCTION_NOT_PERMITTED;

    auto signature = client_.sign(key.key_name, scheme, digest);
    if (!signature.ok()) return report(signature.status());
    std::vector<uint8_t> result;
    if (key.is_ec) {
        auto raw = ecdsa_der_to_raw(signature.value(), key.signature_size / 2);
        if (!raw.ok()) return report(raw.status());
        result = std::move(raw).value();
    } else {
        result = std::move(signature).value();
        if (result.size() > key.signature_size) return report({ErrorCode::protocol_error, "RSA signature too long"});
        // An RSA signature is exactly as long as the modulus (RFC 8017 §8.2.1 I2OSP).
        result.insert(result.begin(), key.signature_size - result.size(), 0);
    }
    std::memcpy(out, result.data(), result.size());
    *out_len = static_cast<CK_ULONG>(result.size());
    return CKR_OK;
}

}  // namespace keyward::p11module
