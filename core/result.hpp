// Error values shared by every part of keyward: the agent, its backends, the client
// library and the OpenSSL provider. Nothing here throws: the provider runs inside other
// people's processes, so every fallible call returns a Status or a Result<T> instead.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace keyward {

// Codes below 100 travel on the wire and are stable; codes from 100 up are produced
// by the client library only (they describe the transport, not the agent's answer).
enum class ErrorCode : uint16_t {
    ok = 0,
    bad_request = 1,  // frame or body malformed
    unsupported_version = 2,
    unknown_operation = 3,
    no_such_key = 4,
    access_denied = 5,
    device_unavailable = 6,  // token removed, not logged in, session lost and not yet recovered
    device_error = 7,        // the device refused the operation
    unsupported_scheme = 8,
    invalid_argument = 9,  // e.g. wrong digest length, unknown key type
    key_exists = 10,
    busy = 11,  // per-connection or device queue full: back-pressure, retry later
    internal = 12,
    no_such_token = 13,

    agent_unreachable = 100,
    timeout = 101,
    protocol_error = 102,  // the agent answered something we cannot parse
    connection_lost = 103,
};

// Stable lower-case name ("no_such_key"), used in JSON output and logs.
std::string_view error_code_name(ErrorCode code) noexcept;

struct Status {
    ErrorCode code = ErrorCode::ok;
    std::string message;

    Status() = default;
    Status(ErrorCode c, std::string m) : code(c), message(std::move(m)) {}
    bool ok() const noexcept { return code == ErrorCode::ok; }
    static Status success() { return {}; }
};

template <typename T>
class Result {
public:
    Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
    Result(Status status) : status_(std::move(status)) {}  // NOLINT
    Result(ErrorCode code, std::string message) : status_(code, std::move(message)) {}

    bool ok() const noexcept { return status_.ok(); }
    const Status& status() const noexcept { return status_; }
    T& value() & { return value_; }
    const T& value() const& { return value_; }
    T&& value() && { return std::move(value_); }
    T* operator->() { return &value_; }
    const T* operator->() const { return &value_; }

private:
    Status status_;
    T value_{};
};

}  // namespace keyward
