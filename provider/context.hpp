// The provider's per-load state: the core handle and the core functions we use, a child
// library context (to reach the default provider for hashing and public-key parsing),
// the one shared agent connection, and the error/debug reporting every entry point uses.
#pragma once

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include <memory>
#include <string>
#include <string_view>

#include "ipc/client.hpp"
#include "core/result.hpp"
#include "provider/failure_text.hpp"

namespace keyward::provider {

// Where a failing call came from, for set_error_debug (file, line, function).
struct SourceLocation {
    const char* file;
    int line;
    const char* func;
};
#define KEYWARD_HERE \
    ::keyward::provider::SourceLocation { __FILE__, __LINE__, __func__ }

class ProviderContext {
public:
    ProviderContext(const OSSL_CORE_HANDLE* handle, const OSSL_DISPATCH* in);
    ~ProviderContext();
    ProviderContext(const ProviderContext&) = delete;
    ProviderContext& operator=(const ProviderContext&) = delete;

    // False when the core did not give us what we need; init then fails.
    bool usable() const noexcept { return libctx_ != nullptr; }

    // A child of the application's library context: holds the same providers, so
    // fetches with kDefaultProps reach the default provider and never ourselves.
    OSSL_LIB_CTX* libctx() const noexcept { return libctx_; }
    static constexpr const char* kDefaultProps = "provider=default";

    const OSSL_CORE_HANDLE* handle() const noexcept { return handle_; }
    keyward::Client& client() noexcept { return *client_; }
    const std::string& socket_path() const noexcept { return client_->socket_path(); }

    // Puts one error on the calling thread's OpenSSL error queue.
    void raise(const SourceLocation& where, Reason reason, std::string_view message) const;
    // Maps an agent/client failure for key `key` (may be empty) onto a clear message.
    void raise_status(const SourceLocation& where, const Status& status, std::string_view key,
                      std::string_view doing = {}) const;

    bool debug_enabled() const noexcept { return debug_; }
    void debug(std::string_view message) const;

    // A digest implementation from the default provider ("SHA256", "SHA2-384", ...).
    // Null (error raised) if unknown or unavailable.
    EVP_MD* fetch_digest(const SourceLocation& where, const char* name) const;

private:
    const OSSL_CORE_HANDLE* handle_;
    OSSL_FUNC_core_new_error_fn* new_error_ = nullptr;
    OSSL_FUNC_core_set_error_debug_fn* set_error_debug_ = nullptr;
    OSSL_FUNC_core_vset_error_fn* vset_error_ = nullptr;
    OSSL_LIB_CTX* libctx_ = nullptr;
    OSSL_PROVIDER* default_provider_ = nullptr;  // our own activation of "default", if we made one
    std::unique_ptr<keyward::Client> client_;
    bool debug_ = false;
};

}  // namespace keyward::provider
