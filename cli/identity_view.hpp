// Text forms of the agent's identity views (JSON documents, docs/renewal.md), shared by
// `keyward identities ...`, `enroll`, `renew` and `status`.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace keyward::cli {

// The full view of one identity, several lines.
std::string identity_text(const nlohmann::json& view);
// One line per identity for `keyward identities list` and `keyward status`; failures and
// renewals due soon are marked with "!" so they stand out.
std::string identity_summary_line(const nlohmann::json& view);

}  // namespace keyward::cli
