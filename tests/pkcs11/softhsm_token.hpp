// A private SoftHSM2 token store in a temporary directory, for tests that talk to a real module.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "pkcs11/pkcs11_backend.hpp"

namespace keyward::test {

inline constexpr const char* kSoftHsmModule = "/usr/lib/softhsm/libsofthsm2.so";
inline constexpr const char* kUserPin = "24681357";
inline constexpr const char* kSoPin = "1357924680";

class SoftHsmToken {
public:
    // Creates the store, points SOFTHSM2_CONF at it (restored on destruction) and, when
    // `label` is not empty, initialises a token with softhsm2-util. Fails the test (REQUIRE)
    // if SoftHSM2 is not installed.
    explicit SoftHsmToken(std::string label);
    ~SoftHsmToken();
    SoftHsmToken(const SoftHsmToken&) = delete;
    SoftHsmToken& operator=(const SoftHsmToken&) = delete;

    const std::string& dir() const { return dir_; }
    const std::string& pin_file() const { return pin_file_; }
    const std::string& label() const { return label_; }
    void write_pin(std::string_view pin) const;
    pkcs11::Pkcs11Config config(size_t sessions = 0) const;

private:
    std::string dir_;
    std::string label_;
    std::string pin_file_;
    std::optional<std::string> previous_conf_;
};

// One token shared by the conformance tests (keys are generated once per process).
SoftHsmToken& shared_token();

// Runs a program without a shell; returns its exit status (-1 if it could not run).
int run_program(const std::vector<std::string>& argv);

}  // namespace keyward::test
