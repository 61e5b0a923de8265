#include "provider/failure_text.hpp"

namespace keyward::provider {

FailureText describe_failure(const Status& status, std::string_view key, std::string_view doing,
                             std::string_view socket_path) {
    std::string k(key);
    std::string what = doing.empty() ? std::string() : " (" + std::string(doing) + ")";
    switch (status.code) {
        case ErrorCode::agent_unreachable:
        case ErrorCode::timeout:
        case ErrorCode::connection_lost:
            // The client library's messages already name the socket path.
            return {Reason::agent_unreachable, "keyward: " + status.message + what};
        case ErrorCode::access_denied:
            return {Reason::access_denied, "keyward: access to key " + k + " denied" + what + ": " + status.message};
        case ErrorCode::no_such_key:
            return {Reason::no_such_key, "keyward: no such key " + k + " in the agent at " + std::string(socket_path)};
        case ErrorCode::device_unavailable:
        case ErrorCode::device_error:
            return {Reason::device_error, "keyward: key " + k + ": device error" + what + ": " + status.message};
        case ErrorCode::unsupported_scheme:
            return {Reason::unsupported, "keyward: key " + k + what + ": " + status.message};
        default:
            return {Reason::agent_error, "keyward: key " + k + what + ": " + std::string(error_code_name(status.code)) +
                                             ": " + status.message};
    }
}

}  // namespace keyward::provider
