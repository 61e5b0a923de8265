// `keyward status --json`: the agent's status as a JSON document (docs/cli.md).
#pragma once

#include <cstdint>
#include <string_view>

#include "cli/json_output.hpp"
#include "ipc/protocol.hpp"

namespace keyward::cli {

// socket, server, protocol_version, uptime_seconds, signatures, key_count, tokens[]; the
// command adds "identities" when the agent manages any.
JsonDocument status_json(std::string_view socket, const ipc::StatusResponse& status, uint8_t protocol_version);

}  // namespace keyward::cli
