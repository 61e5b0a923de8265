// initialize_token(): make a fresh token in the module's free slot (SoftHSM keeps one).
#include <array>
#include <cstring>
#include <vector>

#include "pkcs11/ckr_names.hpp"
#include "pkcs11/module.hpp"
#include "pkcs11/pkcs11_backend.hpp"

namespace keyward::pkcs11 {
namespace {

Status fail(const char* call, CK_RV rv) {
    return Status{rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_INVALID
                      ? ErrorCode::invalid_argument
                      : ErrorCode::device_error,
                  std::string("initialising the token: ") + call + " failed: " + ckr_name(rv)};
}

// Closes the session (and with it any login) on every exit path.
struct Session {
    CK_FUNCTION_LIST* f;
    CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
    ~Session() {
        if (h != CK_INVALID_HANDLE) f->C_CloseSession(h);
    }
};

CK_UTF8CHAR* chars(std::string_view s) { return reinterpret_cast<CK_UTF8CHAR*>(const_cast<char*>(s.data())); }

struct SlotToken {
    CK_SLOT_ID slot;
    CK_TOKEN_INFO info;
};

// The slots with a token and what each token says of itself (slots that fail to answer are left out).
Result<std::vector<SlotToken>> tokens_of(CK_FUNCTION_LIST* f) {
    auto slots = slots_with_token(f);
    if (!slots.ok()) return slots.status();
    std::vector<SlotToken> out;
    for (CK_SLOT_ID slot : slots.value()) {
        CK_TOKEN_INFO ti{};
        if (f->C_GetTokenInfo(slot, &ti) == CKR_OK) out.push_back({slot, ti});
    }
    return out;
}

// The slot that now holds the token just initialised. SoftHSM may move it to a new slot
// id once it re-reads its store, so look it up by label and by "no user PIN yet" rather
// than trusting the old id alone.
Result<CK_SLOT_ID> find_fresh_token(CK_FUNCTION_LIST* f, CK_SLOT_ID old_slot, std::string_view label) {
    auto tokens = tokens_of(f);
    if (!tokens.ok()) return tokens.status();
    std::optional<CK_SLOT_ID> match;
    for (const auto& [slot, ti] : tokens.value()) {
        if (!(ti.flags & CKF_TOKEN_INITIALIZED) || (ti.flags & CKF_USER_PIN_INITIALIZED)) continue;
        if (padded_field(ti.label, sizeof ti.label) != label) continue;
        if (slot == old_slot) return slot;
        if (!match) match = slot;
    }
    if (match) return *match;
    return Status{ErrorCode::device_error, "the token was initialised but cannot be found again"};
}

}  // namespace

Status initialize_token(const std::string& module_path, std::string_view label, std::string_view so_pin,
                        std::string_view user_pin) {
    if (label.empty() || label.size() > 32)
        return Status{ErrorCode::invalid_argument, "a token label must be 1 to 32 bytes long"};
    if (so_pin.empty() || user_pin.empty())
        return Status{ErrorCode::invalid_argument, "the SO PIN and the user PIN must not be empty"};
    auto module = Module::acquire(module_path);
    if (!module.ok()) return module.status();
    CK_FUNCTION_LIST* f = module.value()->f();

    auto tokens = tokens_of(f);
    if (!tokens.ok()) return tokens.status();
    std::optional<CK_SLOT_ID> free_slot;
    for (const auto& [slot, ti] : tokens.value()) {
        if (ti.flags & CKF_TOKEN_INITIALIZED) {
            if (padded_field(ti.label, sizeof ti.label) == label)
                return Status{ErrorCode::invalid_argument, "a token labelled '" + std::string(label) +
                                                               "' already exists in slot " + std::to_string(slot)};
            continue;
        }
        if (!free_slot) free_slot = slot;
    }
    if (!free_slot)
        return Status{ErrorCode::no_such_token, "module " + module_path + " has no slot with an uninitialised token"};

    std::array<CK_UTF8CHAR, 32> padded;
    padded.fill(' ');
    std::memcpy(padded.data(), label.data(), label.size());
    CK_RV rv = f->C_InitToken(*free_slot, chars(so_pin), so_pin.size(), padded.data());
    if (rv != CKR_OK) return fail("C_InitToken", rv);

    auto slot = find_fresh_token(f, *free_slot, label);
    if (!slot.ok()) return slot.status();
    Session session{f};
    rv = f->C_OpenSession(slot.value(), CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &session.h);
    if (rv != CKR_OK) return fail("C_OpenSession", rv);
    rv = f->C_Login(session.h, CKU_SO, chars(so_pin), so_pin.size());
    if (rv != CKR_OK) return fail("C_Login (SO)", rv);
    rv = f->C_InitPIN(session.h, chars(user_pin), user_pin.size());
    f->C_Logout(session.h);
    if (rv != CKR_OK) return fail("C_InitPIN", rv);
    return {};
}

}  // namespace keyward::pkcs11
