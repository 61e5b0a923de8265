// What one SCardGetStatusChange answer means for one reader, as a pure function of the
// state bits PC/SC reported, so the decisions are unit-tested without pcscd.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keyward::pcsc {

enum class CardState { present, removed, error };
std::string_view card_state_name(CardState s) noexcept;

struct ReaderEvent {
    std::string reader;
    CardState state = CardState::removed;
    std::vector<uint8_t> atr;  // the card's answer to reset while present
    std::string detail;        // for error: what failed (pcscd unreachable, reader gone, ...)
    bool operator==(const ReaderEvent&) const = default;
};

// `known` is the state last reported for the reader (nullopt before the first report);
// `event_state` and the ATR are PC/SC's answer (SCARD_STATE_* bits). Returns the event to
// report, or nullopt when nothing a user would notice changed (a card that stayed in, an
// in-use bit that flipped). A card swapped between two polls shows as a new ATR or a
// changed event count, and is reported as present again so the caller re-checks the card.
std::optional<ReaderEvent> interpret(const std::string& reader, const std::optional<ReaderEvent>& known,
                                     uint32_t previous_state, uint32_t event_state, const uint8_t* atr, size_t atr_len);

// The reader names in a multi-string (NUL-separated, ending with an empty string), as
// SCardListReaders returns them; a truncated list yields the complete names only.
std::vector<std::string> split_reader_list(std::string_view multi);

}  // namespace keyward::pcsc
