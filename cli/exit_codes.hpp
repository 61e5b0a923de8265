// The CLI's exit codes (docs/cli.md): scripts and the integration tests rely on them.
#pragma once

#include "core/result.hpp"

namespace keyward::cli {

enum ExitCode : int {
    exit_ok = 0,
    exit_failure = 1,
    exit_usage = 2,
    exit_unreachable = 3,  // also timeout and a lost connection
    exit_denied = 4,
    exit_no_such_key = 5,
    exit_device = 6,  // device error or device unavailable
};

constexpr int exit_code_for(ErrorCode code) noexcept {
    switch (code) {
        case ErrorCode::ok: return exit_ok;
        case ErrorCode::agent_unreachable:
        case ErrorCode::timeout:
        case ErrorCode::connection_lost: return exit_unreachable;
        case ErrorCode::access_denied: return exit_denied;
        case ErrorCode::no_such_key: return exit_no_such_key;
        case ErrorCode::device_error:
        case ErrorCode::device_unavailable: return exit_device;
        default: return exit_failure;
    }
}

}  // namespace keyward::cli
