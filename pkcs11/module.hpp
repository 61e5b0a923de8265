// A loaded PKCS#11 module, shared by every user of the same path inside the process.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <p11-kit/pkcs11.h>

#include "core/result.hpp"
#include "pkcs11/uri.hpp"

namespace keyward::pkcs11 {

class Module {
public:
    // dlopen + C_GetFunctionList + C_Initialize(CKF_OS_LOCKING_OK). A module that someone else
    // in the process already initialised is used as is (and then not finalised by us).
    static Result<std::shared_ptr<Module>> acquire(const std::string& path);

    ~Module();
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    CK_FUNCTION_LIST* f() const noexcept { return functions_; }
    const std::string& path() const noexcept { return path_; }

private:
    static Result<Module*> load(const std::string& path);
    static void release(const std::string& path);
    Module(std::string path, void* handle, CK_FUNCTION_LIST* functions, bool finalize)
            : path_(std::move(path)), handle_(handle), functions_(functions), finalize_(finalize) {}

    std::string path_;
    void* handle_;
    CK_FUNCTION_LIST* functions_;
    bool finalize_;  // we called C_Initialize successfully, so C_Finalize is ours to call
};

// A blank-padded CK_TOKEN_INFO field without its padding.
std::string padded_field(const unsigned char* field, size_t size);

struct FoundToken {
    CK_SLOT_ID slot = 0;
    CK_TOKEN_INFO info{};
};

// The first initialised token matching `uri`; no_such_token (naming `uri_text`) if none does.
Result<FoundToken> find_token(CK_FUNCTION_LIST* f, const TokenUri& uri, const std::string& uri_text);

// Every slot that currently holds a token, in the module's order.
Result<std::vector<CK_SLOT_ID>> slots_with_token(CK_FUNCTION_LIST* f);

}  // namespace keyward::pkcs11
