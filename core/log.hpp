// Logging for keywardd: one line per event on stderr, prefixed with a syslog priority
// ("<6>") that journald understands, so the same output reads well in a terminal and in
// the journal. Never pass a PIN or key material here.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace keyward::log {

enum class Level { error = 3, warning = 4, notice = 5, info = 6, debug = 7 };

void set_level(Level level) noexcept;
bool parse_level(std::string_view name, Level& out) noexcept;
bool enabled(Level level) noexcept;
void write(Level level, std::string_view message) noexcept;

// Text a client chose (a key name, an identity), made safe to put in a log line: control
// bytes, backslashes and bytes outside printable ASCII become \xNN, so no client can forge
// a line, a journald priority or a terminal sequence; cut after `max` bytes with the full
// length noted, so no client can fill the log with one request.
std::string client_text(std::string_view text, size_t max = 64);

inline void error(std::string_view m) noexcept { write(Level::error, m); }
inline void warning(std::string_view m) noexcept { write(Level::warning, m); }
inline void notice(std::string_view m) noexcept { write(Level::notice, m); }
inline void info(std::string_view m) noexcept { write(Level::info, m); }
inline void debug(std::string_view m) noexcept { write(Level::debug, m); }

}  // namespace keyward::log
