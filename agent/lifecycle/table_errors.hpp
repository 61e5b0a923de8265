// Errors in the form every configuration check of an identity uses:
// "FILE:LINE: PREFIX.KEY: what is wrong" (the line left out when TOML does not know it).
#pragma once

#include <string>

#include <toml++/toml.h>

#include "core/result.hpp"

namespace keyward::lifecycle {

class TableErrors {
public:
    TableErrors(const std::string& source, const std::string& prefix) : source_(source), prefix_(prefix) {}

    Status error(const toml::source_region& where, const std::string& key, const std::string& what) const {
        std::string line = where.begin.line > 0 ? ":" + std::to_string(where.begin.line) : "";
        return {ErrorCode::invalid_argument,
                source_ + line + ": " + prefix_ + (key.empty() ? "" : "." + key) + ": " + what};
    }

private:
    std::string source_, prefix_;
};

}  // namespace keyward::lifecycle
