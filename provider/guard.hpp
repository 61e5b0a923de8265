// Every function OpenSSL calls goes through guard(): C callers must never see a C++
// exception, so any that escapes (in practice std::bad_alloc) becomes an error on the
// OpenSSL queue and the function's failure value.
#pragma once

#include <exception>
#include <new>
#include <string>

#include "provider/context.hpp"

namespace keyward::provider {

template <typename R, typename F>
R guard(const ProviderContext* ctx, const SourceLocation& where, R on_failure, F&& body) noexcept {
    try {
        return body();
    } catch (const std::bad_alloc&) {
        if (ctx) ctx->raise(where, Reason::internal, "keyward: out of memory");
    } catch (const std::exception& e) {
        if (ctx) ctx->raise(where, Reason::internal, std::string("keyward: internal error: ") + e.what());
    } catch (...) {
        // Nothing of ours throws anything else; reaching this is a bug worth reporting.
        if (ctx) ctx->raise(where, Reason::internal, "keyward: internal error: non-standard exception");
    }
    return on_failure;
}

// For entry points that return nothing (free functions).
template <typename F>
void guard_void(F&& body) noexcept {
    try {
        body();
    } catch (...) {
        // A destructor path has nowhere to report to; there is nothing to undo either.
    }
}

}  // namespace keyward::provider
