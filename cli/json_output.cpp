#include "cli/json_output.hpp"

#include <cstdio>

#include "cli/exit_codes.hpp"

namespace keyward::cli {

std::string json_text(const JsonDocument& doc) {
    return doc.dump(2, ' ', false, JsonDocument::error_handler_t::replace) + "\n";
}

int print_json(const JsonDocument& doc) {
    std::fputs(json_text(doc).c_str(), stdout);
    return exit_ok;
}

}  // namespace keyward::cli
