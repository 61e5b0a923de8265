// Every function OpenSSL calls goes through guard(): core/c_boundary.hpp, reporting on the
// provider's error queue ("keyward: out of memory", "keyward: internal error: ...").
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/c_boundary.hpp"
#include "provider/context.hpp"

namespace keyward::provider {

template <typename R, typename F>
R guard(const ProviderContext* ctx, const SourceLocation& where, R on_failure, F&& body) noexcept {
    return c_boundary(
        on_failure,
        [&](std::string_view message) {
            if (ctx) ctx->raise(where, Reason::internal, "keyward: " + std::string(message));
        },
        std::forward<F>(body));
}

// A new T (a context or key object OpenSSL will hold) whose `provider` is `provctx`, set
// up by `init(T&)`; null, with the error raised, if that fails.
template <typename T, typename Init>
void* new_object(void* provctx, const SourceLocation& where, Init&& init) noexcept {
    auto* provider = static_cast<ProviderContext*>(provctx);
    return guard(provider, where, static_cast<void*>(nullptr), [&]() -> void* {
        auto object = std::make_unique<T>();
        object->provider = provider;
        init(*object);
        return object.release();
    });
}

// For entry points that return nothing (free functions): a destructor path has nowhere to
// report to, and nothing to undo either.
template <typename F>
void guard_void(F&& body) noexcept {
    c_boundary_void(NoReport{}, std::forward<F>(body));
}

}  // namespace keyward::provider
