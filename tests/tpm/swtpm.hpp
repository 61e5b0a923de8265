// A private swtpm for one test: its own state directory under /tmp, a Unix socket, started
// with not-need-init,startup-clear. Fails the test loudly if swtpm is not installed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ipc/protocol.hpp"
// verify_signature and random_bytes: the same OpenSSL checks as the PKCS#11 backend tests use.
#include "tests/pkcs11/verify.hpp"

namespace keyward::test {

class Swtpm {
public:
    Swtpm();  // throws std::runtime_error when swtpm is missing or does not come up
    ~Swtpm();
    Swtpm(const Swtpm&) = delete;
    Swtpm& operator=(const Swtpm&) = delete;

    std::string tcti() const { return "swtpm:path=" + dir_ + "/tpm.sock"; }
    const std::string& dir() const { return dir_; }
    std::string key_dir() const { return dir_ + "/keys"; }

    void kill();     // SIGKILL, as a crash
    void restart();  // same state directory
    // Runs a shell command with TPM2TOOLS_TCTI / TPM2OPENSSL_TCTI pointing at this swtpm;
    // returns its exit status and stdout.
    int shell(const std::string& command, std::string* out = nullptr) const;

private:
    void start();
    std::string dir_;
    pid_t pid_ = -1;
};

std::vector<uint8_t> sha256(std::string_view text);

}  // namespace keyward::test
