#include "core/result.hpp"

namespace keyward {

std::string_view error_code_name(ErrorCode code) noexcept {
    switch (code) {
        case ErrorCode::ok: return "ok";
        case ErrorCode::bad_request: return "bad_request";
        case ErrorCode::unsupported_version: return "unsupported_version";
        case ErrorCode::unknown_operation: return "unknown_operation";
        case ErrorCode::no_such_key: return "no_such_key";
        case ErrorCode::access_denied: return "access_denied";
        case ErrorCode::device_unavailable: return "device_unavailable";
        case ErrorCode::device_error: return "device_error";
        case ErrorCode::unsupported_scheme: return "unsupported_scheme";
        case ErrorCode::invalid_argument: return "invalid_argument";
        case ErrorCode::key_exists: return "key_exists";
        case ErrorCode::busy: return "busy";
        case ErrorCode::internal: return "internal";
        case ErrorCode::no_such_token: return "no_such_token";
        case ErrorCode::agent_unreachable: return "agent_unreachable";
        case ErrorCode::timeout: return "timeout";
        case ErrorCode::protocol_error: return "protocol_error";
        case ErrorCode::connection_lost: return "connection_lost";
    }
    return "unknown_error";
}

}  // namespace keyward
