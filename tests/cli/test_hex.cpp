// Hex digests on the command line.
#include <catch2/catch.hpp>

#include "core/hex.hpp"

using keyward::from_hex;
using keyward::to_hex;

TEST_CASE("hex round-trips and accepts either case") {
    const std::vector<uint8_t> bytes = {0x00, 0x7f, 0xab, 0xff};
    CHECK(to_hex(bytes) == "007fabff");
    CHECK(from_hex("007fabff") == bytes);
    CHECK(from_hex("007FABFF") == bytes);
}

TEST_CASE("hex refuses odd lengths, non-digits and the empty string") {
    CHECK_FALSE(from_hex("abc"));
    CHECK_FALSE(from_hex("xyz0"));
    CHECK_FALSE(from_hex("ab cd"));
    CHECK_FALSE(from_hex("0x12"));
    CHECK_FALSE(from_hex(""));
}
