#include "core/log.hpp"

#include <unistd.h>

#include <atomic>
#include <string>

namespace keyward::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::info)};
}

void set_level(Level level) noexcept { g_level.store(static_cast<int>(level)); }

bool parse_level(std::string_view name, Level& out) noexcept {
    if (name == "error") out = Level::error;
    else if (name == "warning") out = Level::warning;
    else if (name == "notice") out = Level::notice;
    else if (name == "info") out = Level::info;
    else if (name == "debug") out = Level::debug;
    else return false;
    return true;
}

bool enabled(Level level) noexcept { return static_cast<int>(level) <= g_level.load(std::memory_order_relaxed); }

void write(Level level, std::string_view message) noexcept {
    if (!enabled(level)) return;
    try {
        std::string line = "<" + std::to_string(static_cast<int>(level)) + ">";
        for (char c : message) line += (c == '\n' || c == '\r') ? ' ' : c;  // one event, one line
        line += '\n';
        // One write(2) per line keeps lines from different threads whole.
        (void)!::write(STDERR_FILENO, line.data(), line.size());
    } catch (...) {
        // Logging must never take the agent down (e.g. out of memory while formatting).
    }
}

}  // namespace keyward::log
