#include "tests/tpm/swtpm.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <thread>

#include <openssl/sha.h>

namespace keyward::test {
namespace {

std::string find_swtpm() {
    for (const char* p : {"/usr/bin/swtpm", "/usr/local/bin/swtpm"})
        if (::access(p, X_OK) == 0) return p;
    throw std::runtime_error("swtpm is not installed (apt-get install swtpm swtpm-tools): the TPM tests need it");
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

Swtpm::Swtpm() {
    char tmpl[] = "/tmp/keyward-swtpm-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    ::mkdir((dir_ + "/state").c_str(), 0700);
    start();
}

Swtpm::~Swtpm() {
    kill();
    std::system(("rm -rf '" + dir_ + "'").c_str());
}

void Swtpm::start() {
    const std::string swtpm = find_swtpm();
    const std::string sock = dir_ + "/tpm.sock";
    ::unlink(sock.c_str());
    ::unlink((sock + ".ctrl").c_str());
    const std::string server = "type=unixio,path=" + sock;
    const std::string ctrl = "type=unixio,path=" + sock + ".ctrl";
    const std::string state = "dir=" + dir_ + "/state";
    const std::string log = "file=" + dir_ + "/swtpm.log,level=1";
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        ::execl(swtpm.c_str(), "swtpm", "socket", "--tpm2", "--server", server.c_str(), "--ctrl", ctrl.c_str(),
                "--tpmstate", state.c_str(), "--flags", "not-need-init,startup-clear", "--log", log.c_str(),
                static_cast<char*>(nullptr));
        ::_exit(127);
    }
    for (int i = 0; i < 200; ++i) {
        if (exists(sock) && exists(sock + ".ctrl")) return;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("swtpm exited at start; see " + dir_ + "/swtpm.log");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    throw std::runtime_error("swtpm did not create its sockets within 5 s");
}

void Swtpm::kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

void Swtpm::restart() {
    kill();
    start();
}

int Swtpm::shell(const std::string& command, std::string* out) const {
    const std::string full = "export TPM2TOOLS_TCTI='" + tcti() + "' TPM2OPENSSL_TCTI='" + tcti() + "'; { " + command +
                             "\n} 2>>" + dir_ + "/shell.err";
    std::unique_ptr<FILE, decltype(&::pclose)> p(::popen(full.c_str(), "r"), ::pclose);
    if (!p) return -1;
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p.get())) > 0) text.append(buf, n);
    const int status = ::pclose(p.release());
    if (out) *out = text;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<uint8_t> sha256(std::string_view text) {
    std::vector<uint8_t> out(SHA256_DIGEST_LENGTH);
    SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out.data());
    return out;
}

}  // namespace keyward::test
