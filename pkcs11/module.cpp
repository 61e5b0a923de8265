#include "pkcs11/module.hpp"

#include <dlfcn.h>

#include <map>
#include <mutex>

#include "pkcs11/ckr_names.hpp"

namespace keyward::pkcs11 {
namespace {

// One registry for the process. Creation and finalisation both happen under its lock so a
// module being finalised by its last user cannot race with a new user initialising it.
struct Registered {
    Module* module = nullptr;
    size_t users = 0;
};
struct Registry {
    std::mutex mu;
    std::map<std::string, Registered> modules;
};

Registry& registry() {
    static Registry* r = new Registry;  // never destroyed: modules may outlive static destructors
    return *r;
}

}  // namespace

Result<std::shared_ptr<Module>> Module::acquire(const std::string& path) {
    if (path.empty()) return Status{ErrorCode::invalid_argument, "no PKCS#11 module path given"};
    Registry& reg = registry();
    std::lock_guard lock(reg.mu);
    Registered& entry = reg.modules[path];
    if (!entry.module) {
        auto created = load(path);
        if (!created.ok()) {
            reg.modules.erase(path);
            return created.status();
        }
        entry.module = created.value();
    }
    ++entry.users;
    return std::shared_ptr<Module>(entry.module, [path](Module*) { release(path); });
}

void Module::release(const std::string& path) {
    Registry& reg = registry();
    std::lock_guard lock(reg.mu);
    auto it = reg.modules.find(path);
    if (it == reg.modules.end() || --it->second.users > 0) return;
    delete it->second.module;
    reg.modules.erase(it);
}

Result<Module*> Module::load(const std::string& path) {
    // Never dlclose'd: modules register atexit handlers and thread-locals, and unloading them
    // is a classic source of crashes. A second acquire after finalisation reuses the mapping.
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char* err = ::dlerror();
        return Status{ErrorCode::device_unavailable,
                      "cannot load PKCS#11 module " + path + ": " + (err ? err : "dlopen failed")};
    }
    auto get_list = reinterpret_cast<CK_C_GetFunctionList>(::dlsym(handle, "C_GetFunctionList"));
    if (!get_list)
        return Status{ErrorCode::device_unavailable, path + " is not a PKCS#11 module (no C_GetFunctionList)"};
    CK_FUNCTION_LIST* functions = nullptr;
    CK_RV rv = get_list(&functions);
    if (rv != CKR_OK || !functions)
        return Status{ErrorCode::device_unavailable, "C_GetFunctionList of " + path + " failed: " + ckr_name(rv)};

    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    rv = functions->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
        return Status{ErrorCode::device_unavailable, "C_Initialize of " + path + " failed: " + ckr_name(rv)};

    return new Module(path, handle, functions, rv == CKR_OK);
}

Module::~Module() {
    // Finalising lets the next user re-read the module's configuration and slot list
    // (SoftHSM only renumbers a freshly initialised token's slot on C_Initialize).
    if (finalize_) functions_->C_Finalize(nullptr);
}

std::string padded_field(const unsigned char* field, size_t size) {
    while (size > 0 && (field[size - 1] == ' ' || field[size - 1] == '\0')) --size;
    return std::string(reinterpret_cast<const char*>(field), size);
}

Result<std::vector<CK_SLOT_ID>> slots_with_token(CK_FUNCTION_LIST* f) {
    std::vector<CK_SLOT_ID> slots;
    for (int attempt = 0; attempt < 4; ++attempt) {
        CK_ULONG n = 0;
        CK_RV rv = f->C_GetSlotList(CK_TRUE, nullptr, &n);
        if (rv != CKR_OK) return Status{ErrorCode::device_unavailable, "C_GetSlotList failed: " + ckr_name(rv)};
        slots.resize(n);
        rv = f->C_GetSlotList(CK_TRUE, slots.data(), &n);
        if (rv == CKR_BUFFER_TOO_SMALL) continue;  // a token appeared in between
        if (rv != CKR_OK) return Status{ErrorCode::device_unavailable, "C_GetSlotList failed: " + ckr_name(rv)};
        slots.resize(n);
        return slots;
    }
    return Status{ErrorCode::device_unavailable, "C_GetSlotList keeps changing size"};
}

Result<FoundToken> find_token(CK_FUNCTION_LIST* f, const TokenUri& uri, const std::string& uri_text) {
    auto slots = slots_with_token(f);
    if (!slots.ok()) return slots.status();
    for (CK_SLOT_ID slot : slots.value()) {
        if (uri.slot_id && *uri.slot_id != slot) continue;
        FoundToken found;
        found.slot = slot;
        if (f->C_GetTokenInfo(slot, &found.info) != CKR_OK) continue;  // removed meanwhile
        if (!(found.info.flags & CKF_TOKEN_INITIALIZED)) continue;
        const auto& ti = found.info;
        if (uri.token && *uri.token != padded_field(ti.label, sizeof ti.label)) continue;
        if (uri.manufacturer && *uri.manufacturer != padded_field(ti.manufacturerID, sizeof ti.manufacturerID))
            continue;
        if (uri.serial && *uri.serial != padded_field(ti.serialNumber, sizeof ti.serialNumber)) continue;
        if (uri.model && *uri.model != padded_field(ti.model, sizeof ti.model)) continue;
        return found;
    }
    return Status{ErrorCode::no_such_token, "no initialised token matches " + uri_text + " (" +
                                                std::to_string(slots.value().size()) + " slot(s) with a token)"};
}

}  // namespace keyward::pkcs11
