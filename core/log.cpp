#include "core/log.hpp"

#include <unistd.h>

#include <atomic>
#include <string>

#include "core/hex.hpp"

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

std::string client_text(std::string_view text, size_t max) {
    std::string out;
    const std::string_view shown = text.substr(0, max);
    out.reserve(shown.size() + 16);
    for (char ch : shown) {
        const auto b = static_cast<unsigned char>(ch);
        if (b < 0x20 || b >= 0x7f || b == '\\') {
            out += "\\x" + to_hex(std::span<const uint8_t>(&b, 1));
        } else {
            out += ch;
        }
    }
    if (text.size() > max) out += "...(" + std::to_string(text.size()) + " bytes)";
    return out;
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
