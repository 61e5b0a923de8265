// How a failed agent call is told to the person reading an OpenSSL error: the reason code
// and a message naming keyward, the key and the cause. Shared by the provider and the
// engine; pure (no OpenSSL), so it is unit-tested.
#pragma once

#include <string>
#include <string_view>

#include "core/result.hpp"

namespace keyward::provider {

// Reason codes on the OpenSSL error queue (library "keyward").
enum class Reason : int {
    agent_unreachable = 1,
    access_denied = 2,
    no_such_key = 3,
    device_error = 4,
    unsupported = 5,
    invalid_argument = 6,
    not_our_key = 7,
    internal = 8,
    agent_error = 9,
};

struct FailureText {
    Reason reason;
    std::string message;
};

// `doing` ("signing", "loading the key") may be empty; `socket_path` is where the agent
// was looked for.
FailureText describe_failure(const Status& status, std::string_view key, std::string_view doing,
                             std::string_view socket_path);

}  // namespace keyward::provider
