// Text forms of the agent's identity views (JSON documents, docs/renewal.md), shared by
// `keyward identities ...`, `enroll`, `renew` and `status`.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/result.hpp"

namespace keyward::cli {

// The agent's answer to an identity operation, parsed; a transport or agent error passes
// through, and text that is not JSON is a protocol_error.
Result<nlohmann::json> parse_identity_view(const Result<std::string>& answer);

// The full view of one identity, several lines.
std::string identity_text(const nlohmann::json& view);
// One line per identity for `keyward identities list` and `keyward status`; failures and
// renewals due soon are marked with "!" so they stand out.
std::string identity_summary_line(const nlohmann::json& view);

}  // namespace keyward::cli
