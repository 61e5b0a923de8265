// STORE for "keyward:NAME" URIs: `openssl ... -key keyward:NAME`, OSSL_STORE_open().
// Loading asks the agent for the key's public half (GET_KEY), which also tells us at
// once whether the agent is reachable, the key exists and we may use it.
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/params.h>
#include <openssl/store.h>

#include <string>

#include "provider/algorithms.hpp"
#include "provider/dispatch.hpp"
#include "provider/guard.hpp"
#include "provider/key.hpp"

namespace keyward::provider {

namespace {

constexpr std::string_view kScheme = "keyward:";

struct StoreCtx {
    ProviderContext* provider = nullptr;
    std::string name;
    int expect = 0;  // OSSL_STORE_INFO_* wanted, 0: anything
    bool done = false;
};

void* store_open(void* provctx, const char* uri) noexcept {
    auto* provider = static_cast<ProviderContext*>(provctx);
    return guard(provider, KEYWARD_HERE, static_cast<void*>(nullptr), [&]() -> void* {
        std::string_view u = uri != nullptr ? uri : "";
        if (u.substr(0, kScheme.size()) != kScheme) return nullptr;  // not ours; OpenSSL tries others
        std::string name(u.substr(kScheme.size()));
        if (name.empty()) {
            provider->raise(KEYWARD_HERE, Reason::invalid_argument, "keyward: the URI names no key (use keyward:NAME)");
            return nullptr;
        }
        auto ctx = std::make_unique<StoreCtx>();
        ctx->provider = provider;
        ctx->name = std::move(name);
        provider->debug("store: open " + ctx->name);
        return ctx.release();
    });
}

const OSSL_PARAM* store_settable_ctx_params(void* /*provctx*/) noexcept {
    static const OSSL_PARAM params[] = {
        OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, nullptr),
        OSSL_PARAM_END,
    };
    return params;
}

int store_set_ctx_params(void* loaderctx, const OSSL_PARAM params[]) noexcept {
    auto* ctx = static_cast<StoreCtx*>(loaderctx);
    if (ctx == nullptr) return 0;
    if (params == nullptr) return 1;
    const OSSL_PARAM* p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT);
    if (p != nullptr && !OSSL_PARAM_get_int(p, &ctx->expect)) return 0;
    return 1;
}

int store_load(void* loaderctx, OSSL_CALLBACK* object_cb, void* object_cbarg, OSSL_PASSPHRASE_CALLBACK* /*pw_cb*/,
               void* /*pw_cbarg*/) noexcept {
    auto* ctx = static_cast<StoreCtx*>(loaderctx);
    if (ctx == nullptr) return 0;
    return guard(ctx->provider, KEYWARD_HERE, 0, [&] {
        if (ctx->done) return 0;
        ctx->done = true;
        // We only hold keys; a caller looking for certificates gets nothing from us.
        if (ctx->expect != 0 && ctx->expect != OSSL_STORE_INFO_PKEY && ctx->expect != OSSL_STORE_INFO_PUBKEY) return 1;

        std::unique_ptr<KeyObject> key = fetch_agent_key(*ctx->provider, KEYWARD_HERE, ctx->name);
        if (!key) return 0;
        int type = OSSL_OBJECT_PKEY;
        std::string data_type(key_kind_type_name(key->kind));
        std::string desc = "keyward key " + ctx->name;
        KeyObject* raw = key.release();
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &type),
            OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE, data_type.data(), 0),
            OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &raw, sizeof raw),
            OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DESC, desc.data(), 0),
            OSSL_PARAM_construct_end(),
        };
        int ok = object_cb(params, object_cbarg);
        delete raw;  // null when our KEYMGMT's load took it over
        return ok;
    });
}

int store_eof(void* loaderctx) noexcept {
    auto* ctx = static_cast<StoreCtx*>(loaderctx);
    return ctx == nullptr || ctx->done ? 1 : 0;
}

int store_close(void* loaderctx) noexcept {
    delete static_cast<StoreCtx*>(loaderctx);
    return 1;
}

}  // namespace

const OSSL_DISPATCH store_functions[] = {
    KEYWARD_FN(OSSL_FUNC_STORE_OPEN, store_open),
    KEYWARD_FN(OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS, store_settable_ctx_params),
    KEYWARD_FN(OSSL_FUNC_STORE_SET_CTX_PARAMS, store_set_ctx_params),
    KEYWARD_FN(OSSL_FUNC_STORE_LOAD, store_load),
    KEYWARD_FN(OSSL_FUNC_STORE_EOF, store_eof),
    KEYWARD_FN(OSSL_FUNC_STORE_CLOSE, store_close),
    KEYWARD_FN_END,
};

}  // namespace keyward::provider
