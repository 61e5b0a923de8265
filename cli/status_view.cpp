#include "cli/status_view.hpp"

namespace keyward::cli {

JsonDocument status_json(std::string_view socket, const ipc::StatusResponse& status, uint8_t protocol_version) {
    JsonDocument tokens = JsonDocument::array();
    for (const auto& t : status.tokens)
        tokens.push_back(
            JsonDocument{{"name", t.name}, {"kind", t.kind}, {"state", t.state}, {"description", t.description}});
    JsonDocument key_use = JsonDocument::array();
    for (const auto& u : status.key_use)
        key_use.push_back(JsonDocument{{"key", u.name}, {"signatures", u.signatures}, {"failed", u.failed}});
    return {
        {"socket", socket},
        {"server", status.server},
        {"protocol_version", static_cast<uint32_t>(protocol_version)},
        {"uptime_seconds", status.uptime_seconds},
        {"signatures", status.signatures},
        {"key_count", status.key_count},
        {"tokens", std::move(tokens)},
        {"key_use", std::move(key_use)},
    };
}

}  // namespace keyward::cli
