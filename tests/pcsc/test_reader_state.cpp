// The PC/SC monitor's decisions from reader state bits, without pcscd.
#include <PCSC/winscard.h>

#include <catch2/catch.hpp>
#include <string>

#include "pcsc/reader_state.hpp"

using keyward::pcsc::CardState;
using keyward::pcsc::interpret;
using keyward::pcsc::ReaderEvent;
using keyward::pcsc::split_reader_list;

namespace {
const uint8_t kAtr[] = {0x3B, 0x7A, 0x18, 0x00};
const uint8_t kOtherAtr[] = {0x3B, 0x8F, 0x80, 0x01};
constexpr uint32_t count(uint32_t n) { return n << 16; }
}  // namespace

TEST_CASE("the first look at a reader is always reported") {
    auto ev = interpret("R", std::nullopt, SCARD_STATE_UNAWARE, SCARD_STATE_CHANGED | SCARD_STATE_EMPTY, nullptr, 0);
    REQUIRE(ev);
    CHECK(ev->state == CardState::removed);
    CHECK(ev->reader == "R");

    ev = interpret("R", std::nullopt, SCARD_STATE_UNAWARE, SCARD_STATE_CHANGED | SCARD_STATE_PRESENT, kAtr, 4);
    REQUIRE(ev);
    CHECK(ev->state == CardState::present);
    CHECK(ev->atr == std::vector<uint8_t>(kAtr, kAtr + 4));
}

TEST_CASE("insertion and removal are reported once each") {
    ReaderEvent empty{"R", CardState::removed, {}, {}};
    auto in = interpret("R", empty, SCARD_STATE_EMPTY, SCARD_STATE_CHANGED | SCARD_STATE_PRESENT | count(1), kAtr, 4);
    REQUIRE(in);
    CHECK(in->state == CardState::present);

    // In use by another program, still the same card: nothing to report.
    CHECK_FALSE(interpret("R", *in, SCARD_STATE_PRESENT | count(1),
                          SCARD_STATE_CHANGED | SCARD_STATE_PRESENT | SCARD_STATE_INUSE | count(1), kAtr, 4));

    auto out = interpret("R", *in, SCARD_STATE_PRESENT | count(1), SCARD_STATE_CHANGED | SCARD_STATE_EMPTY | count(2),
                         nullptr, 0);
    REQUIRE(out);
    CHECK(out->state == CardState::removed);
    CHECK(out->atr.empty());
}

TEST_CASE("a card swapped between two looks is reported as present again") {
    ReaderEvent in{"R", CardState::present, {kAtr, kAtr + 4}, {}};
    // Same ATR, but the event counter moved: out and back in (maybe another card of the same model).
    auto again = interpret("R", in, SCARD_STATE_PRESENT | count(1),
                           SCARD_STATE_CHANGED | SCARD_STATE_PRESENT | count(3), kAtr, 4);
    REQUIRE(again);
    CHECK(again->state == CardState::present);
    // Another ATR is another card.
    auto other = interpret("R", in, SCARD_STATE_PRESENT | count(1),
                           SCARD_STATE_CHANGED | SCARD_STATE_PRESENT | count(1), kOtherAtr, 4);
    REQUIRE(other);
    CHECK(other->atr == std::vector<uint8_t>(kOtherAtr, kOtherAtr + 4));
}

TEST_CASE("a mute card, an unavailable or vanished reader are errors that say so") {
    auto mute = interpret("R", std::nullopt, 0, SCARD_STATE_CHANGED | SCARD_STATE_PRESENT | SCARD_STATE_MUTE, kAtr, 4);
    REQUIRE(mute);
    CHECK(mute->state == CardState::error);
    CHECK(mute->detail.find("mute") != std::string::npos);

    auto gone =
        interpret("R", std::nullopt, 0, SCARD_STATE_CHANGED | SCARD_STATE_UNKNOWN | SCARD_STATE_IGNORE, nullptr, 0);
    REQUIRE(gone);
    CHECK(gone->state == CardState::error);
    CHECK(gone->detail == "the reader is gone");

    auto unavailable = interpret("R", std::nullopt, 0, SCARD_STATE_CHANGED | SCARD_STATE_UNAVAILABLE, nullptr, 0);
    REQUIRE(unavailable);
    CHECK(unavailable->state == CardState::error);
    // Reported once, not again while it stays so.
    CHECK_FALSE(interpret("R", *unavailable, SCARD_STATE_UNAVAILABLE, SCARD_STATE_CHANGED | SCARD_STATE_UNAVAILABLE,
                          nullptr, 0));
}

TEST_CASE("reader lists: complete, empty, truncated and garbage") {
    using namespace std::string_literals;
    CHECK(split_reader_list("A 00\0B 01\0\0"s) == std::vector<std::string>{"A 00", "B 01"});
    CHECK(split_reader_list(""s).empty());
    CHECK(split_reader_list("\0"s).empty());
    CHECK(split_reader_list("A 00\0B 0"s) == std::vector<std::string>{"A 00"});  // cut inside a name
    CHECK(split_reader_list("no terminator at all"s).empty());
    CHECK(split_reader_list("A\0\0B\0\0"s) == std::vector<std::string>{"A"});  // nothing after the end mark
    std::string big(70000, 'x');
    big += "\0\0"s;
    CHECK(split_reader_list(big) == std::vector<std::string>{std::string(70000, 'x')});
}
