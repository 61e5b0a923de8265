// The one way to stop C++ exceptions where C code calls us (OpenSSL's provider, ENGINE and
// key-method callbacks): C callers cannot unwind a C++ exception, and our code runs inside
// other people's processes, where std::terminate is not an option.
//
//   return c_boundary(0, report, [&] { ...; return 1; });
//
// runs the body and returns what it returns; an escaping exception (in practice
// std::bad_alloc) becomes `on_failure`, after `report` was called with a message saying what
// happened ("out of memory", "internal error: <what()>"). The message is built without
// allocating, and an exception from `report` itself is swallowed: it has nowhere to go.
#pragma once

#include <algorithm>
#include <cstdio>
#include <exception>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>

namespace keyward {

// A report for boundaries that have nowhere to tell (free functions, destructors).
struct NoReport {
    void operator()(std::string_view /*message*/) const noexcept {}
};

namespace detail {

template <typename Report>
void report_quietly(Report& report, std::string_view message) noexcept {
    try {
        report(message);
    } catch (...) {
        // Reporting failed too (out of memory again, most likely): the failure value must do.
    }
}

template <typename Report>
void report_current_exception(Report& report) noexcept {
    try {
        throw;
    } catch (const std::bad_alloc&) {
        report_quietly(report, "out of memory");
    } catch (const std::exception& e) {
        char text[256];
        const int n = std::snprintf(text, sizeof text, "internal error: %s", e.what());
        report_quietly(report,
                       std::string_view(text, n < 0 ? 0 : std::min<size_t>(static_cast<size_t>(n), sizeof text - 1)));
    } catch (...) {
        // Nothing of ours throws anything else; reaching this is a bug worth reporting.
        report_quietly(report, "internal error: non-standard exception");
    }
}

}  // namespace detail

template <typename R, typename Report, typename F>
R c_boundary(R on_failure, Report&& report, F&& body) noexcept {
    try {
        return std::forward<F>(body)();
    } catch (...) {
        detail::report_current_exception(report);
    }
    return on_failure;
}

// For bodies that return nothing.
template <typename Report, typename F>
void c_boundary_void(Report&& report, F&& body) noexcept {
    try {
        std::forward<F>(body)();
    } catch (...) {
        detail::report_current_exception(report);
    }
}

}  // namespace keyward
