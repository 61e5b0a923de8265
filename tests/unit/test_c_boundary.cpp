// core/c_boundary.hpp: the body's value passes through; any exception becomes the failure
// value and one report saying what happened; a report that throws does not escape.
#include <catch2/catch.hpp>

#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/c_boundary.hpp"

using keyward::c_boundary;
using keyward::c_boundary_void;

namespace {

struct Reports {
    std::vector<std::string> seen;
    auto reporter() {
        return [this](std::string_view message) { seen.emplace_back(message); };
    }
};

}  // namespace

TEST_CASE("c_boundary: the body's value passes through, nothing is reported", "[c_boundary]") {
    Reports r;
    CHECK(c_boundary(0, r.reporter(), [] { return 7; }) == 7);
    const char* text = "x";
    CHECK(c_boundary(static_cast<const char*>(nullptr), r.reporter(), [&] { return text; }) == text);
    CHECK(r.seen.empty());
    static_assert(noexcept(c_boundary(0, keyward::NoReport{}, []() -> int { throw 1; })));
}

TEST_CASE("c_boundary: out of memory becomes the failure value", "[c_boundary]") {
    Reports r;
    CHECK(c_boundary(-1, r.reporter(), []() -> int { throw std::bad_alloc(); }) == -1);
    REQUIRE(r.seen.size() == 1);
    CHECK(r.seen[0] == "out of memory");
}

TEST_CASE("c_boundary: a standard exception is reported with its what()", "[c_boundary]") {
    Reports r;
    CHECK(c_boundary(0, r.reporter(), []() -> int { throw std::runtime_error("the queue broke"); }) == 0);
    REQUIRE(r.seen.size() == 1);
    CHECK(r.seen[0] == "internal error: the queue broke");
}

TEST_CASE("c_boundary: a very long what() is cut, not overrun", "[c_boundary]") {
    Reports r;
    const std::string long_text(1000, 'a');
    CHECK(c_boundary(0, r.reporter(), [&]() -> int { throw std::logic_error(long_text); }) == 0);
    REQUIRE(r.seen.size() == 1);
    CHECK(r.seen[0].rfind("internal error: aaaa", 0) == 0);
    CHECK(r.seen[0].size() < 256);
}

TEST_CASE("c_boundary: anything else thrown is reported as non-standard", "[c_boundary]") {
    Reports r;
    CHECK(c_boundary(0, r.reporter(), []() -> int { throw 42; }) == 0);
    REQUIRE(r.seen.size() == 1);
    CHECK(r.seen[0] == "internal error: non-standard exception");
}

TEST_CASE("c_boundary: a report that throws itself does not escape", "[c_boundary]") {
    auto throwing = [](std::string_view) { throw std::bad_alloc(); };
    CHECK(c_boundary(5, throwing, []() -> int { throw std::runtime_error("x"); }) == 5);
}

TEST_CASE("c_boundary_void: runs the body and stops its exceptions", "[c_boundary]") {
    Reports r;
    int ran = 0;
    c_boundary_void(r.reporter(), [&] { ++ran; });
    CHECK(ran == 1);
    CHECK(r.seen.empty());
    c_boundary_void(r.reporter(), [&] { throw std::runtime_error("free failed"); });
    REQUIRE(r.seen.size() == 1);
    CHECK(r.seen[0] == "internal error: free failed");
    c_boundary_void(keyward::NoReport{}, [] { throw 1; });  // nowhere to tell: only stopped
}
