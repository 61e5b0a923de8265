#include "tests/pkcs11/softhsm_token.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include <catch2/catch.hpp>

namespace keyward::test {

int run_program(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        const int devnull = ::open("/dev/null", O_WRONLY);
        if (devnull >= 0) ::dup2(devnull, STDOUT_FILENO);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

SoftHsmToken::SoftHsmToken(std::string label) : label_(std::move(label)) {
    INFO("SoftHSM2 must be installed (Debian package softhsm2): " << kSoftHsmModule);
    REQUIRE(::access(kSoftHsmModule, R_OK) == 0);

    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/keyward-pkcs11-XXXXXX";
    REQUIRE(::mkdtemp(templ.data()) != nullptr);
    dir_ = templ;
    std::filesystem::create_directory(dir_ + "/tokens");
    const std::string conf = dir_ + "/softhsm2.conf";
    {
        std::ofstream out(conf);
        out << "directories.tokendir = " << dir_ << "/tokens\n"
            << "objectstore.backend = file\n"
            << "log.level = ERROR\n"
            << "slots.removable = false\n";
    }
    if (const char* prev = std::getenv("SOFTHSM2_CONF")) previous_conf_ = prev;
    ::setenv("SOFTHSM2_CONF", conf.c_str(), 1);

    pin_file_ = dir_ + "/user.pin";
    write_pin(kUserPin);
    if (!label_.empty()) {
        const int rc = run_program(
            {"softhsm2-util", "--init-token", "--free", "--label", label_, "--so-pin", kSoPin, "--pin", kUserPin});
        INFO("softhsm2-util --init-token must work (exit status " << rc << ")");
        REQUIRE(rc == 0);
    }
}

SoftHsmToken::~SoftHsmToken() {
    if (previous_conf_) ::setenv("SOFTHSM2_CONF", previous_conf_->c_str(), 1);
    else ::unsetenv("SOFTHSM2_CONF");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

void SoftHsmToken::write_pin(std::string_view pin) const {
    {
        std::ofstream out(pin_file_, std::ios::trunc);
        out << pin << "\n";
    }
    // The agent refuses PIN files other users can read.
    std::filesystem::permissions(pin_file_, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

pkcs11::Pkcs11Config SoftHsmToken::config(size_t sessions) const {
    return pkcs11::Pkcs11Config{kSoftHsmModule, "pkcs11:token=" + label_, pin_file_, sessions};
}

SoftHsmToken& shared_token() {
    static SoftHsmToken token("keyward-test");
    return token;
}

}  // namespace keyward::test
