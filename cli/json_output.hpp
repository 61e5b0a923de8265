// The text of the CLI's --json documents. Scripts parse it, so its form is fixed: members
// in the order we add them (ordered_json, not the sorted map), two-space indents, a final
// newline, and strings as UTF-8 in which bytes a device sent that are not UTF-8 become
// U+FFFD instead of making the whole document fail.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace keyward::cli {

using JsonDocument = nlohmann::ordered_json;

std::string json_text(const JsonDocument& doc);
// Writes json_text(doc) to stdout and returns exit_ok.
int print_json(const JsonDocument& doc);

}  // namespace keyward::cli
