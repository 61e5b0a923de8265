// Structured records for the systemd journal: when stderr is the journal (JOURNAL_STREAM names
// it), a record goes as one datagram in journald's native protocol to its socket, with fields
// a query can select (`journalctl KEYWARD_KEY=web`); otherwise, or when that socket refuses
// it, as the usual line on stderr. The MESSAGE is the same text either way.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/log.hpp"

namespace keyward::log {

struct Field {
    std::string_view name;  // upper-case letters, digits and '_', not starting with '_'
    std::string_view value;
};

void write_fields(Level level, std::string_view message, std::span<const Field> fields) noexcept;

// Tests: send records to this datagram socket as if stderr were the journal ("" restores the
// detection from JOURNAL_STREAM).
void use_journal_socket_for_testing(const std::string& path);

// One datagram in journald's native format (exposed for tests): FIELD=value lines, values
// with a newline in the length-prefixed binary form.
std::string journal_datagram(Level level, std::string_view message, std::span<const Field> fields);

}  // namespace keyward::log
