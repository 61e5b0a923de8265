#include "provider/context.hpp"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <unistd.h>

namespace keyward::provider {

namespace {

// Values from the provider's section in openssl.cnf, e.g.
//   [keyward_sect]
//   activate = 1
//   socket = /run/keyward/agent.sock
struct ConfigValues {
    std::string socket;
    std::string debug;
    std::string timeout;  // seconds per operation; default $KEYWARD_TIMEOUT, else 30
};

ConfigValues read_config(const OSSL_CORE_HANDLE* handle, OSSL_FUNC_core_get_params_fn* get_params) {
    ConfigValues cfg;
    if (get_params == nullptr) return cfg;
    char* socket = nullptr;
    char* debug = nullptr;
    char* timeout = nullptr;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_ptr("socket", &socket, 0),
        OSSL_PARAM_construct_utf8_ptr("debug", &debug, 0),
        OSSL_PARAM_construct_utf8_ptr("timeout", &timeout, 0),
        OSSL_PARAM_construct_end(),
    };
    if (get_params(handle, params)) {
        if (socket != nullptr) cfg.socket = socket;
        if (debug != nullptr) cfg.debug = debug;
        if (timeout != nullptr) cfg.timeout = timeout;
    }
    return cfg;
}

bool truthy(std::string_view v) { return v == "1" || v == "yes" || v == "true" || v == "on"; }

// OpenSSL answers an unqualified fetch ("EC" key management, as libssl does for ECDHE
// key generation and to decide which TLS groups it can offer) with the first provider
// that registered the algorithm, and providers register in the order they sit in the
// library context's provider list: load order. With `-provider keyward -provider
// default` (or keyward first in openssl.cnf) our EC key management would win, and TLS 1.2
// ECDHE would lose every EC group. Our init runs before we are put on that list, so
// activating "default" here, when nobody has yet, puts it first whatever order the user
// chose. We need it anyway: keyward hashes and parses public keys with it. (Loading and
// unloading at once is not enough: openssl.cnf's loader then deactivates the entry it
// finds.) Our activation is released at teardown.
//
// Only done for the global default library context, the one we can recognise without
// assuming what the core's opaque context pointer is.
OSSL_PROVIDER* put_default_provider_first(const OSSL_CORE_HANDLE* handle, OSSL_FUNC_core_get_libctx_fn* get_libctx,
                                          bool debug) {
    if (get_libctx == nullptr) return nullptr;
    auto* core = reinterpret_cast<OSSL_LIB_CTX*>(get_libctx(handle));
    if (core != nullptr && core != OSSL_LIB_CTX_get0_global_default()) return nullptr;
    if (OSSL_PROVIDER_available(nullptr, "default") == 1) return nullptr;  // already active, and listed
    ERR_set_mark();
    OSSL_PROVIDER* prov = OSSL_PROVIDER_load(nullptr, "default");
    ERR_pop_to_mark();
    if (debug && prov != nullptr)
        std::fprintf(stderr, "keyward-provider: activated the default provider ahead of keyward\n");
    return prov;
}

}  // namespace

ProviderContext::ProviderContext(const OSSL_CORE_HANDLE* handle, const OSSL_DISPATCH* in) : handle_(handle) {
    OSSL_FUNC_core_get_params_fn* get_params = nullptr;
    OSSL_FUNC_core_get_libctx_fn* get_libctx = nullptr;
    for (const OSSL_DISPATCH* f = in; f != nullptr && f->function_id != 0; ++f) {
        switch (f->function_id) {
            case OSSL_FUNC_CORE_GET_PARAMS: get_params = OSSL_FUNC_core_get_params(f); break;
            case OSSL_FUNC_CORE_GET_LIBCTX: get_libctx = OSSL_FUNC_core_get_libctx(f); break;
            case OSSL_FUNC_CORE_NEW_ERROR: new_error_ = OSSL_FUNC_core_new_error(f); break;
            case OSSL_FUNC_CORE_SET_ERROR_DEBUG: set_error_debug_ = OSSL_FUNC_core_set_error_debug(f); break;
            case OSSL_FUNC_CORE_VSET_ERROR: vset_error_ = OSSL_FUNC_core_vset_error(f); break;
            default: break;
        }
    }
    ConfigValues cfg = read_config(handle, get_params);
    const char* env_debug = ::secure_getenv("KEYWARD_PROVIDER_DEBUG");
    debug_ = truthy(cfg.debug) || (env_debug != nullptr && truthy(env_debug));

    ClientOptions options;
    options.socket_path = resolve_socket_path(cfg.socket);
    options.client_name = "keyward-provider";
    options.timeout = resolve_timeout(cfg.timeout, std::chrono::seconds(30));
    client_ = std::make_unique<keyward::Client>(std::move(options));

    default_provider_ = put_default_provider_first(handle, get_libctx, debug_);
    libctx_ = OSSL_LIB_CTX_new_child(handle, in);
    debug("loaded; agent socket " + client_->socket_path());
}

ProviderContext::~ProviderContext() {
    OSSL_LIB_CTX_free(libctx_);
    if (default_provider_ != nullptr) OSSL_PROVIDER_unload(default_provider_);
}

namespace {
void call_vset_error(OSSL_FUNC_core_vset_error_fn* fn, const OSSL_CORE_HANDLE* handle, uint32_t reason, const char* fmt,
                     ...) {
    va_list args;
    va_start(args, fmt);
    fn(handle, reason, fmt, args);
    va_end(args);
}
}  // namespace

void ProviderContext::raise(const SourceLocation& where, Reason reason, std::string_view message) const {
    std::string text(message);
    debug("error: " + text);
    if (new_error_ == nullptr || set_error_debug_ == nullptr || vset_error_ == nullptr) {
        ERR_raise_data(ERR_LIB_PROV, ERR_R_INTERNAL_ERROR, "%s", text.c_str());
        return;
    }
    new_error_(handle_);
    // Inside the guard lambdas __func__ is "operator()", which would only confuse.
    const char* func = std::strcmp(where.func, "operator()") == 0 ? "" : where.func;
    set_error_debug_(handle_, where.file, where.line, func);
    call_vset_error(vset_error_, handle_, static_cast<uint32_t>(reason), "%s", text.c_str());
}

void ProviderContext::raise_status(const SourceLocation& where, const Status& status, std::string_view key,
                                   std::string_view doing) const {
    FailureText text = describe_failure(status, key, doing, socket_path());
    raise(where, text.reason, text.message);
}

void ProviderContext::debug(std::string_view message) const {
    if (!debug_) return;
    std::fprintf(stderr, "keyward-provider[%d]: %.*s\n", static_cast<int>(getpid()), static_cast<int>(message.size()),
                 message.data());
}

EVP_MD* ProviderContext::fetch_digest(const SourceLocation& where, const char* name) const {
    ERR_set_mark();
    EVP_MD* md = EVP_MD_fetch(libctx_, name, kDefaultProps);
    if (md == nullptr) {
        ERR_pop_to_mark();
        raise(where, Reason::unsupported,
              std::string("keyward: digest ") + name +
                  " is not available from the default provider (activate \"default\" before \"keyward\")");
        return nullptr;
    }
    ERR_clear_last_mark();
    return md;
}

}  // namespace keyward::provider
