#include "pcsc/reader_state.hpp"

#include <PCSC/winscard.h>

namespace keyward::pcsc {

std::string_view card_state_name(CardState s) noexcept {
    switch (s) {
        case CardState::present: return "present";
        case CardState::removed: return "removed";
        case CardState::error: return "error";
    }
    return "error";
}

namespace {

// The upper 16 bits of dwEventState count card insertions and removals in pcsc-lite: a
// different count with the card still present means it was taken out and put back (or
// replaced) between two looks.
uint32_t event_count(uint32_t state) { return state >> 16; }

}  // namespace

std::optional<ReaderEvent> interpret(const std::string& reader, const std::optional<ReaderEvent>& known,
                                     uint32_t previous_state, uint32_t event_state, const uint8_t* atr,
                                     size_t atr_len) {
    ReaderEvent ev{reader, CardState::removed, {}, {}};
    if (event_state & (SCARD_STATE_UNKNOWN | SCARD_STATE_IGNORE)) {
        ev.state = CardState::error;
        ev.detail = "the reader is gone";
    } else if (event_state & SCARD_STATE_UNAVAILABLE) {
        ev.state = CardState::error;
        ev.detail = "the reader is unavailable";
    } else if ((event_state & SCARD_STATE_PRESENT) && (event_state & SCARD_STATE_MUTE)) {
        ev.state = CardState::error;
        ev.detail = "the card does not answer (mute)";
    } else if (event_state & SCARD_STATE_PRESENT) {
        ev.state = CardState::present;
        if (atr != nullptr) ev.atr.assign(atr, atr + atr_len);
    }
    if (!known) return ev;
    if (*known == ev) {
        bool reinserted = ev.state == CardState::present && (previous_state & SCARD_STATE_PRESENT) &&
                          event_count(previous_state) != event_count(event_state);
        if (!reinserted) return std::nullopt;
    }
    return ev;
}

std::vector<std::string> split_reader_list(std::string_view multi) {
    std::vector<std::string> names;
    while (!multi.empty()) {
        size_t end = multi.find('\0');
        if (end == std::string_view::npos || end == 0) break;  // truncated, or the closing empty name
        names.emplace_back(multi.substr(0, end));
        multi.remove_prefix(end + 1);
    }
    return names;
}

}  // namespace keyward::pcsc
