// tpm/sealed_secret: the embedded token's PIN sealed to one TPM, against a real swtpm.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tests/tpm/swtpm.hpp"
#include "tpm/sealed_secret.hpp"

using namespace keyward;

namespace {
std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }
}  // namespace

TEST_CASE("tpm: a sealed secret comes back from the same TPM, also after a restart", "[tpm][seal]") {
    test::Swtpm tpm;
    const auto secret = bytes("0123456789abcdef0123456789abcdef");
    auto blob = tpm::seal_secret(tpm.tcti(), secret);
    REQUIRE(blob.ok());
    // The blob holds the TPM's wrapping of the secret, never the secret itself.
    const std::string text(blob->begin(), blob->end());
    CHECK(text.find("0123456789abcdef") == std::string::npos);

    std::vector<uint8_t> out;
    REQUIRE(tpm::unseal_secret(tpm.tcti(), blob.value(), out).ok());
    CHECK(out == secret);

    tpm.restart();
    REQUIRE(tpm::unseal_secret(tpm.tcti(), blob.value(), out).ok());
    CHECK(out == secret);
}

TEST_CASE("tpm: another TPM cannot unseal, and says so", "[tpm][seal]") {
    test::Swtpm mine;
    test::Swtpm other;
    auto blob = tpm::seal_secret(mine.tcti(), bytes("pin-for-mine"));
    REQUIRE(blob.ok());
    std::vector<uint8_t> out{1, 2, 3};
    Status s = tpm::unseal_secret(other.tcti(), blob.value(), out);
    REQUIRE_FALSE(s.ok());
    CHECK(s.code == ErrorCode::device_error);
    CHECK_THAT(s.message, Catch::Matchers::Contains("another TPM"));
    CHECK(out.empty());
}

TEST_CASE("tpm: damaged, truncated and foreign blobs are refused without touching the TPM state", "[tpm][seal]") {
    test::Swtpm tpm;
    auto blob = tpm::seal_secret(tpm.tcti(), bytes("pin"));
    REQUIRE(blob.ok());
    std::vector<uint8_t> out;
    for (size_t cut : {size_t{0}, size_t{3}, size_t{7}, size_t{12}, blob->size() / 2, blob->size() - 1}) {
        std::vector<uint8_t> truncated(blob->begin(), blob->begin() + static_cast<std::ptrdiff_t>(cut));
        Status s = tpm::unseal_secret(tpm.tcti(), truncated, out);
        CHECK(s.code == ErrorCode::invalid_argument);
    }
    std::vector<uint8_t> longer = blob.value();
    longer.push_back(0);
    CHECK(tpm::unseal_secret(tpm.tcti(), longer, out).code == ErrorCode::invalid_argument);
    std::vector<uint8_t> garbage(blob->size(), 0x41);
    CHECK(tpm::unseal_secret(tpm.tcti(), garbage, out).code == ErrorCode::invalid_argument);
    // Flipping a byte of the wrapped private part: the TPM's integrity check refuses it.
    std::vector<uint8_t> flipped = blob.value();
    flipped[flipped.size() - 5] ^= 0x01;
    Status s = tpm::unseal_secret(tpm.tcti(), flipped, out);
    CHECK_FALSE(s.ok());
    CHECK(out.empty());
    // And the genuine blob still works afterwards.
    REQUIRE(tpm::unseal_secret(tpm.tcti(), blob.value(), out).ok());
    CHECK(out == bytes("pin"));
}

TEST_CASE("tpm: secrets too large or empty are refused", "[tpm][seal]") {
    test::Swtpm tpm;
    CHECK(tpm::seal_secret(tpm.tcti(), {}).status().code == ErrorCode::invalid_argument);
    CHECK(tpm::seal_secret(tpm.tcti(), std::vector<uint8_t>(129, 'x')).status().code == ErrorCode::invalid_argument);
}
