// The PKCS#11 v2.40 C interface of keyward-pkcs11.so. Every entry point runs its body
// through core/c_boundary.hpp: an exception (in practice out of memory) becomes a CKR,
// never an unwind into the caller's C code.
//
// Fork: the module remembers the pid that called C_Initialize; in a child every call
// answers CKR_CRYPTOKI_NOT_INITIALIZED until the child calls C_Initialize itself (PKCS#11
// v2.40 §6.7.7). The parent's state is then left behind untouched in the child: another
// parent thread may have held one of its locks at the moment of fork.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string_view>

#include <p11-kit/pkcs11.h>

#include "core/c_boundary.hpp"
#include "p11module/interfaces.hpp"
#include "p11module/module.hpp"

namespace keyward::p11module {
namespace {

std::atomic<Module*> g_module{nullptr};
std::atomic<pid_t> g_pid{0};

Module* current() noexcept {
    Module* m = g_module.load(std::memory_order_acquire);
    if (!m || g_pid.load(std::memory_order_relaxed) != ::getpid()) return nullptr;
    return m;
}

template <typename F>
CK_RV guarded(F&& body) noexcept {
    bool out_of_memory = false;
    const CK_RV rv = c_boundary(
        CKR_GENERAL_ERROR,
        [&](std::string_view message) {
            out_of_memory = message == "out of memory";
            debug_report(message);
        },
        std::forward<F>(body));
    return out_of_memory ? CKR_HOST_MEMORY : rv;
}

// Runs `body(module)` when the module is initialised in this process.
template <typename F>
CK_RV with_module(F&& body) noexcept {
    return guarded([&]() -> CK_RV {
        Module* m = current();
        if (!m) return CKR_CRYPTOKI_NOT_INITIALIZED;
        return body(*m);
    });
}

// Runs `body(module, session)` with the session's mutex held.
template <typename F>
CK_RV with_session(CK_SESSION_HANDLE handle, F&& body) noexcept {
    return with_module([&](Module& m) -> CK_RV {
        auto s = m.session(handle);
        if (!s) return CKR_SESSION_HANDLE_INVALID;
        std::lock_guard lock(s->mutex);
        return body(m, *s);
    });
}

// PKCS#11 text fields are blank-padded, not NUL-terminated.
template <size_t N>
void pad(unsigned char (&field)[N], std::string_view text) {
    std::memset(field, ' ', N);
    std::memcpy(field, text.data(), std::min(N, text.size()));
}

CK_VERSION library_version() {
    // KEYWARD_VERSION is "major.minor.patch".
    std::string_view v = KEYWARD_VERSION;
    CK_VERSION out{0, 0};
    size_t dot = v.find('.');
    for (char c : v.substr(0, dot)) out.major = static_cast<CK_BYTE>(out.major * 10 + (c - '0'));
    if (dot != std::string_view::npos) {
        auto rest = v.substr(dot + 1);
        for (char c : rest.substr(0, rest.find('.'))) out.minor = static_cast<CK_BYTE>(out.minor * 10 + (c - '0'));
    }
    return out;
}

CK_RV check_slot(CK_SLOT_ID slot) { return slot == kSlotId ? CKR_OK : CKR_SLOT_ID_INVALID; }

// Attributes of a private key that exist but are never revealed.
bool is_secret_attribute(CK_ATTRIBUTE_TYPE t) {
    switch (t) {
        case CKA_VALUE:
        case CKA_PRIVATE_EXPONENT:
        case CKA_PRIME_1:
        case CKA_PRIME_2:
        case CKA_EXPONENT_1:
        case CKA_EXPONENT_2:
        case CKA_COEFFICIENT: return true;
        default: return false;
    }
}

// ---- general ------------------------------------------------------------------------------

CK_RV Initialize(CK_VOID_PTR init_args) {
    return guarded([&]() -> CK_RV {
        if (init_args) {
            CK_C_INITIALIZE_ARGS args;
            std::memcpy(&args, init_args, sizeof args);
            if (args.pReserved) return CKR_ARGUMENTS_BAD;
            const bool some_fns = args.CreateMutex || args.DestroyMutex || args.LockMutex || args.UnlockMutex;
            const bool all_fns = args.CreateMutex && args.DestroyMutex && args.LockMutex && args.UnlockMutex;
            if (some_fns && !all_fns) return CKR_ARGUMENTS_BAD;
            // We lock with the OS's primitives; callers' own mutex functions alone we cannot use.
            if (all_fns && !(args.flags & CKF_OS_LOCKING_OK)) return CKR_CANT_LOCK;
        }
        if (current()) return CKR_CRYPTOKI_ALREADY_INITIALIZED;
        ClientOptions options;
        options.client_name = "keyward-pkcs11";
        auto fresh = std::make_unique<Module>(std::move(options));
        // A module inherited over fork() is abandoned, not freed (see the top of this file).
        g_pid.store(::getpid(), std::memory_order_relaxed);
        g_module.store(fresh.release(), std::memory_order_release);
        return CKR_OK;
    });
}

CK_RV Finalize(CK_VOID_PTR reserved) {
    return guarded([&]() -> CK_RV {
        if (reserved) return CKR_ARGUMENTS_BAD;
        Module* m = current();
        if (!m) return CKR_CRYPTOKI_NOT_INITIALIZED;
        g_module.store(nullptr, std::memory_order_release);
        delete m;
        return CKR_OK;
    });
}

CK_RV GetInfo(CK_INFO_PTR info) {
    return with_module([&](Module&) -> CK_RV {
        if (!info) return CKR_ARGUMENTS_BAD;
        std::memset(info, 0, sizeof *info);
        info->cryptokiVersion = {CRYPTOKI_VERSION_MAJOR, CRYPTOKI_VERSION_MINOR};
        pad(info->manufacturerID, "keyward");
        info->flags = 0;
        pad(info->libraryDescription, "keyward agent PKCS#11 module");
        info->libraryVersion = library_version();
        return CKR_OK;
    });
}

// ---- slots and tokens -----------------------------------------------------------------------

CK_RV GetSlotList(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count) {
    return with_module([&](Module& m) -> CK_RV {
        if (!count) return CKR_ARGUMENTS_BAD;
        // The slot is always there; the token (the agent) only while it answers.
        const CK_ULONG n = (!token_present || m.agent_present()) ? 1 : 0;
        if (!list) {
            *count = n;
            return CKR_OK;
        }
        if (*count < n) {
            *count = n;
            return CKR_BUFFER_TOO_SMALL;
        }
        if (n) list[0] = kSlotId;
        *count = n;
        return CKR_OK;
    });
}

CK_RV GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info) {
    return with_module([&](Module& m) -> CK_RV {
        if (CK_RV rv = check_slot(slot); rv != CKR_OK) return rv;
        if (!info) return CKR_ARGUMENTS_BAD;
        std::memset(info, 0, sizeof *info);
        pad(info->slotDescription, "keyward agent at " + m.client().socket_path());
        pad(info->manufacturerID, "keyward");
        info->flags = CKF_REMOVABLE_DEVICE | (m.agent_present() ? CKF_TOKEN_PRESENT : 0);
        info->hardwareVersion = {0, 0};
        info->firmwareVersion = library_version();
        return CKR_OK;
    });
}

CK_RV GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info) {
    return with_module([&](Module& m) -> CK_RV {
        if (CK_RV rv = check_slot(slot); rv != CKR_OK) return rv;
        if (!info) return CKR_ARGUMENTS_BAD;
        if (!m.agent_present()) return CKR_TOKEN_NOT_PRESENT;
        std::memset(info, 0, sizeof *info);
        pad(info->label, "keyward");
        pad(info->manufacturerID, "keyward");
        pad(info->model, "agent");
        pad(info->serialNumber, m.serial());
        // No login (the agent's policy decides who signs), no RNG, no clock; objects come
        // from the agent, not from C_CreateObject.
        info->flags = CKF_TOKEN_INITIALIZED | CKF_WRITE_PROTECTED;
        info->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
        info->ulSessionCount = m.session_count(false);
        info->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
        info->ulRwSessionCount = m.session_count(true);
        info->ulMaxPinLen = 0;
        info->ulMinPinLen = 0;
        info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
        info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
        info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
        info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
        info->hardwareVersion = {0, 0};
        info->firmwareVersion = library_version();
        pad(info->utcTime, "");
        return CKR_OK;
    });
}

CK_RV WaitForSlotEvent(CK_FLAGS, CK_SLOT_ID_PTR, CK_VOID_PTR) {
    return with_module([](Module&) -> CK_RV { return CKR_FUNCTION_NOT_SUPPORTED; });
}

CK_RV GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count) {
    return with_module([&](Module&) -> CK_RV {
        if (CK_RV rv = check_slot(slot); rv != CKR_OK) return rv;
        if (!count) return CKR_ARGUMENTS_BAD;
        const auto signing = all_mechanisms();
        const auto digests = all_digests();
        const CK_ULONG n = signing.size() + digests.size();
        if (!list) {
            *count = n;
            return CKR_OK;
        }
        if (*count < n) {
            *count = n;
            return CKR_BUFFER_TOO_SMALL;
        }
        for (const auto& m : signing) *list++ = m.type;
        for (const auto& d : digests) *list++ = d.type;
        *count = n;
        return CKR_OK;
    });
}

CK_RV GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info) {
    return with_module([&](Module&) -> CK_RV {
        if (CK_RV rv = check_slot(slot); rv != CKR_OK) return rv;
        if (!info) return CKR_ARGUMENTS_BAD;
        if (find_digest(type)) {
            *info = {0, 0, CKF_DIGEST};
            return CKR_OK;
        }
        const MechanismInfo* m = find_mechanism(type);
        if (!m) return CKR_MECHANISM_INVALID;
        if (mechanism_is_ec(*m)) {
            *info = {256, 384, CKF_HW | CKF_SIGN | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS};
        } else {
            *info = {2048, 4096, CKF_HW | CKF_SIGN};
        }
        return CKR_OK;
    });
}

CK_RV InitToken(CK_SLOT_ID, CK_UTF8CHAR_PTR, CK_ULONG, CK_UTF8CHAR_PTR) {
    return with_module([](Module&) -> CK_RV { return CKR_FUNCTION_NOT_SUPPORTED; });
}

// ---- sessions ----------------------------------------------------------------------------

CK_RV OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR, CK_NOTIFY, CK_SESSION_HANDLE_PTR out) {
    return with_module([&](Module& m) -> CK_RV {
        if (CK_RV rv = check_slot(slot); rv != CKR_OK) return rv;
        if (!out) return CKR_ARGUMENTS_BAD;
        if (!(flags & CKF_SERIAL_SESSION)) return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
        if (!m.agent_present()) return CKR_TOKEN_NOT_PRESENT;
        return m.open_session(flags, *out);
    });
}

CK_RV CloseSession(CK_SESSION_HANDLE h) {
    return with_module([&](Module& m) -> CK_RV { return m.close_session(h); });
}

CK_RV CloseAllSessions(CK_SLOT_ID slot) {
    return with_module([&](Module& m) -> CK_RV {
        if (CK_RV rv = check_slot(slot); rv != CKR_OK) return rv;
        m.close_all_sessions();
        return CKR_OK;
    });
}

CK_RV GetSessionInfo(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info) {
    return with_session(h, [&](Module& m, Session& s) -> CK_RV {
        if (!info) return CKR_ARGUMENTS_BAD;
        const bool rw = (s.flags & CKF_RW_SESSION) != 0;
        const bool user = m.logged_in.load();
        info->slotID = kSlotId;
        info->state = rw ? (user ? CKS_RW_USER_FUNCTIONS : CKS_RW_PUBLIC_SESSION)
                         : (user ? CKS_RO_USER_FUNCTIONS : CKS_RO_PUBLIC_SESSION);
        info->flags = s.flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION);
        info->ulDeviceError = 0;
        return CKR_OK;
    });
}

// Accepted and ignored: the agent decides who may sign by who is asking (SO_PEERCRED), not
// by a PIN, and consumers that log in regardless must not fail.
CK_RV Login(CK_SESSION_HANDLE h, CK_USER_TYPE, CK_UTF8CHAR_PTR, CK_ULONG) {
    return with_session(h, [&](Module& m, Session&) -> CK_RV {
        m.logged_in = true;
        return CKR_OK;
    });
}

CK_RV Logout(CK_SESSION_HANDLE h) {
    return with_session(h, [&](Module& m, Session&) -> CK_RV {
        m.logged_in = false;
        return CKR_OK;
    });
}

// ---- objects -------------------------------------------------------------------------------

CK_RV GetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count) {
    return with_session(h, [&](Module& m, Session&) -> CK_RV {
        if (!tmpl && count) return CKR_ARGUMENTS_BAD;
        auto o = m.object(obj);
        if (!o) return CKR_OBJECT_HANDLE_INVALID;
        CK_RV rv = CKR_OK;
        for (CK_ULONG i = 0; i < count; ++i) {
            CK_ATTRIBUTE& t = tmpl[i];
            const ObjectAttribute* a = o->find(t.type);
            if (!a) {
                t.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                const bool secret = o->object_class == CKO_PRIVATE_KEY && is_secret_attribute(t.type);
                if (secret) rv = CKR_ATTRIBUTE_SENSITIVE;
                else if (rv == CKR_OK) rv = CKR_ATTRIBUTE_TYPE_INVALID;
                continue;
            }
            if (!t.pValue) {
                t.ulValueLen = a->value.size();
            } else if (t.ulValueLen < a->value.size()) {
                t.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                rv = CKR_BUFFER_TOO_SMALL;
            } else {
                if (!a->value.empty()) std::memcpy(t.pValue, a->value.data(), a->value.size());
                t.ulValueLen = a->value.size();
            }
        }
        return rv;
    });
}

CK_RV FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count) {
    return with_session(h, [&](Module& m, Session& s) -> CK_RV {
        if (!tmpl && count) return CKR_ARGUMENTS_BAD;
        if (s.find) return CKR_OPERATION_ACTIVE;
        if (CK_RV rv = m.refresh_objects(); rv != CKR_OK) return rv;
        // A snapshot: keys that come or go during the search do not disturb it.
        s.find = FindOperation{m.matching(std::span<const CK_ATTRIBUTE>(tmpl, count)), 0};
        return CKR_OK;
    });
}

CK_RV FindObjects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR out, CK_ULONG max, CK_ULONG_PTR count) {
    return with_session(h, [&](Module&, Session& s) -> CK_RV {
        if (!count || (!out && max)) return CKR_ARGUMENTS_BAD;
        if (!s.find) return CKR_OPERATION_NOT_INITIALIZED;
        auto& f = *s.find;
        CK_ULONG n = 0;
        while (n < max && f.next < f.handles.size()) out[n++] = f.handles[f.next++];
        *count = n;
        return CKR_OK;
    });
}

CK_RV FindObjectsFinal(CK_SESSION_HANDLE h) {
    return with_session(h, [&](Module&, Session& s) -> CK_RV {
        if (!s.find) return CKR_OPERATION_NOT_INITIALIZED;
        s.find.reset();
        return CKR_OK;
    });
}

// ---- signing ---------------------------------------------------------------------------------

CK_RV SignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key) {
    return with_session(h, [&](Module& m, Session& s) -> CK_RV {
        if (!mechanism) return CKR_ARGUMENTS_BAD;
        return m.sign_init(s, *mechanism, key);
    });
}

CK_RV Sign(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len) {
    return with_session(h, [&](Module& m, Session& s) -> CK_RV {
        if ((!data && data_len) || !sig_len) return CKR_ARGUMENTS_BAD;
        return m.sign(s, std::span<const uint8_t>(data, data_len), sig, sig_len);
    });
}

CK_RV SignUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG data_len) {
    return with_session(h, [&](Module& m, Session& s) -> CK_RV {
        if (!data && data_len) return CKR_ARGUMENTS_BAD;
        return m.sign_update(s, std::span<const uint8_t>(data, data_len));
    });
}

CK_RV SignFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len) {
    return with_session(h, [&](Module& m, Session& s) -> CK_RV {
        if (!sig_len) return CKR_ARGUMENTS_BAD;
        return m.sign_final(s, sig, sig_len);
    });
}

CK_RV DigestInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mechanism) {
    return with_session(h, [&](Module&, Session& s) -> CK_RV {
        if (!mechanism) return CKR_ARGUMENTS_BAD;
        if (mechanism->ulParameterLen != 0) return CKR_MECHANISM_PARAM_INVALID;
        return digest_init(s, mechanism->mechanism);
    });
}

CK_RV Digest(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
    return with_session(h, [&](Module&, Session& s) -> CK_RV {
        if ((!data && data_len) || !out_len) return CKR_ARGUMENTS_BAD;
        return digest(s, std::span<const uint8_t>(data, data_len), out, out_len);
    });
}

CK_RV DigestUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG data_len) {
    return with_session(h, [&](Module&, Session& s) -> CK_RV {
        if (!data && data_len) return CKR_ARGUMENTS_BAD;
        return digest_update(s, std::span<const uint8_t>(data, data_len));
    });
}

CK_RV DigestFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
    return with_session(h, [&](Module&, Session& s) -> CK_RV {
        if (!out_len) return CKR_ARGUMENTS_BAD;
        return digest_final(s, out, out_len);
    });
}

CK_RV GetFunctionStatus(CK_SESSION_HANDLE h) {
    return with_session(h, [](Module&, Session&) -> CK_RV { return CKR_FUNCTION_NOT_PARALLEL; });
}
CK_RV CancelFunction(CK_SESSION_HANDLE h) {
    return with_session(h, [](Module&, Session&) -> CK_RV { return CKR_FUNCTION_NOT_PARALLEL; });
}
CK_RV SeedRandom(CK_SESSION_HANDLE h, CK_BYTE_PTR, CK_ULONG) {
    return with_session(h, [](Module&, Session&) -> CK_RV { return CKR_RANDOM_SEED_NOT_SUPPORTED; });
}
CK_RV GenerateRandom(CK_SESSION_HANDLE h, CK_BYTE_PTR, CK_ULONG) {
    return with_session(h, [](Module&, Session&) -> CK_RV { return CKR_RANDOM_NO_RNG; });
}

// Everything else this module does not do: the same answer, with each function's own
// signature (taken from the function list's member types).
template <typename Fn>
struct NotSupported;
template <typename... Args>
struct NotSupported<CK_RV (*)(Args...)> {
    static CK_RV call(Args...) { return CKR_FUNCTION_NOT_SUPPORTED; }
};
#define KEYWARD_NOT_SUPPORTED(field) list.field = &NotSupported<decltype(list.field)>::call

CK_RV GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out);

CK_FUNCTION_LIST make_function_list() {
    CK_FUNCTION_LIST list{};
    list.version = {CRYPTOKI_VERSION_MAJOR, CRYPTOKI_VERSION_MINOR};
    list.C_Initialize = Initialize;
    list.C_Finalize = Finalize;
    list.C_GetInfo = GetInfo;
    list.C_GetFunctionList = GetFunctionList;
    list.C_GetSlotList = GetSlotList;
    list.C_GetSlotInfo = GetSlotInfo;
    list.C_GetTokenInfo = GetTokenInfo;
    list.C_GetMechanismList = GetMechanismList;
    list.C_GetMechanismInfo = GetMechanismInfo;
    list.C_InitToken = InitToken;
    KEYWARD_NOT_SUPPORTED(C_InitPIN);
    KEYWARD_NOT_SUPPORTED(C_SetPIN);
    list.C_OpenSession = OpenSession;
    list.C_CloseSession = CloseSession;
    list.C_CloseAllSessions = CloseAllSessions;
    list.C_GetSessionInfo = GetSessionInfo;
    KEYWARD_NOT_SUPPORTED(C_GetOperationState);
    KEYWARD_NOT_SUPPORTED(C_SetOperationState);
    list.C_Login = Login;
    list.C_Logout = Logout;
    KEYWARD_NOT_SUPPORTED(C_CreateObject);
    KEYWARD_NOT_SUPPORTED(C_CopyObject);
    KEYWARD_NOT_SUPPORTED(C_DestroyObject);
    KEYWARD_NOT_SUPPORTED(C_GetObjectSize);
    list.C_GetAttributeValue = GetAttributeValue;
    KEYWARD_NOT_SUPPORTED(C_SetAttributeValue);
    list.C_FindObjectsInit = FindObjectsInit;
    list.C_FindObjects = FindObjects;
    list.C_FindObjectsFinal = FindObjectsFinal;
    KEYWARD_NOT_SUPPORTED(C_EncryptInit);
    KEYWARD_NOT_SUPPORTED(C_Encrypt);
    KEYWARD_NOT_SUPPORTED(C_EncryptUpdate);
    KEYWARD_NOT_SUPPORTED(C_EncryptFinal);
    KEYWARD_NOT_SUPPORTED(C_DecryptInit);
    KEYWARD_NOT_SUPPORTED(C_Decrypt);
    KEYWARD_NOT_SUPPORTED(C_DecryptUpdate);
    KEYWARD_NOT_SUPPORTED(C_DecryptFinal);
    list.C_DigestInit = DigestInit;
    list.C_Digest = Digest;
    list.C_DigestUpdate = DigestUpdate;
    KEYWARD_NOT_SUPPORTED(C_DigestKey);
    list.C_DigestFinal = DigestFinal;
    list.C_SignInit = SignInit;
    list.C_Sign = Sign;
    list.C_SignUpdate = SignUpdate;
    list.C_SignFinal = SignFinal;
    KEYWARD_NOT_SUPPORTED(C_SignRecoverInit);
    KEYWARD_NOT_SUPPORTED(C_SignRecover);
    KEYWARD_NOT_SUPPORTED(C_VerifyInit);
    KEYWARD_NOT_SUPPORTED(C_Verify);
    KEYWARD_NOT_SUPPORTED(C_VerifyUpdate);
    KEYWARD_NOT_SUPPORTED(C_VerifyFinal);
    KEYWARD_NOT_SUPPORTED(C_VerifyRecoverInit);
    KEYWARD_NOT_SUPPORTED(C_VerifyRecover);
    KEYWARD_NOT_SUPPORTED(C_DigestEncryptUpdate);
    KEYWARD_NOT_SUPPORTED(C_DecryptDigestUpdate);
    KEYWARD_NOT_SUPPORTED(C_SignEncryptUpdate);
    KEYWARD_NOT_SUPPORTED(C_DecryptVerifyUpdate);
    KEYWARD_NOT_SUPPORTED(C_GenerateKey);
    KEYWARD_NOT_SUPPORTED(C_GenerateKeyPair);
    KEYWARD_NOT_SUPPORTED(C_WrapKey);
    KEYWARD_NOT_SUPPORTED(C_UnwrapKey);
    KEYWARD_NOT_SUPPORTED(C_DeriveKey);
    list.C_SeedRandom = SeedRandom;
    list.C_GenerateRandom = GenerateRandom;
    list.C_GetFunctionStatus = GetFunctionStatus;
    list.C_CancelFunction = CancelFunction;
    list.C_WaitForSlotEvent = WaitForSlotEvent;
    return list;
}
#undef KEYWARD_NOT_SUPPORTED

CK_FUNCTION_LIST g_function_list = make_function_list();

Interface g_interface = interface_for(&g_function_list);

CK_RV GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out) {
    if (!out) return CKR_ARGUMENTS_BAD;
    *out = &g_function_list;
    return CKR_OK;
}

CK_RV GetInterfaceList(Interface* out, CK_ULONG_PTR count) noexcept {
    return guarded([&] { return get_interface_list(g_interface, out, count); });
}

CK_RV GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR version, Interface** out, CK_FLAGS flags) noexcept {
    return guarded([&] { return get_interface(g_interface, name, version, out, flags); });
}

}  // namespace
}  // namespace keyward::p11module

extern "C" __attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out) {
    return keyward::p11module::GetFunctionList(out);
}

// PKCS#11 3.0 declares these with CK_INTERFACE, which Interface mirrors (interfaces.hpp).
extern "C" __attribute__((visibility("default"))) CK_RV C_GetInterfaceList(keyward::p11module::Interface* out,
                                                                           CK_ULONG_PTR count) {
    return keyward::p11module::GetInterfaceList(out, count);
}

extern "C" __attribute__((visibility("default"))) CK_RV C_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR version,
                                                                       keyward::p11module::Interface** out,
                                                                       CK_FLAGS flags) {
    return keyward::p11module::GetInterface(name, version, out, flags);
}
