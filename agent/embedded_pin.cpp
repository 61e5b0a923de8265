#include "agent/embedded_pin.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>

#include "core/durable_file.hpp"
#include "core/hex.hpp"
#include "core/log.hpp"
#include "core/unique_fd.hpp"
#include "tpm/sealed_secret.hpp"

namespace keyward::agent {
namespace {

constexpr const char* kDefaultTpm = "device:/dev/tpmrm0";

std::string plain_file(const std::string& state_dir) { return state_dir + "/user.pin"; }
std::string sealed_file(const std::string& state_dir) { return state_dir + "/user.pin.sealed"; }

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

// Wipes a std::string's characters when it goes (the PIN passes through a few).
struct Wiped {
    std::string& s;
    ~Wiped() { OPENSSL_cleanse(s.data(), s.size()); }
};

// The memory files made so far, one per state directory: a reload must find the same path
// (an unchanged token configuration keeps its sessions), and the TPM is asked once.
std::mutex memory_files_mu;
std::map<std::string, UniqueFd> memory_files;

Result<std::string> memory_pin_file(const std::string& state_dir, const std::vector<uint8_t>& pin) {
    UniqueFd fd(::memfd_create("keyward-embedded-pin", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) return Status{ErrorCode::internal, std::string("memfd_create: ") + std::strerror(errno)};
    if (::fchmod(fd.get(), 0600) != 0 ||
        ::write(fd.get(), pin.data(), pin.size()) != static_cast<ssize_t>(pin.size()) ||
        ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0)
        return Status{ErrorCode::internal,
                      std::string("cannot hold the unsealed PIN in memory: ") + std::strerror(errno)};
    const std::string path = "/proc/self/fd/" + std::to_string(fd.get());
    memory_files[state_dir] = std::move(fd);
    return path;
}

Result<std::vector<uint8_t>> read_blob(const std::string& path) {
    auto text = files::read_file(path);
    if (!text.ok()) return text.status();
    return std::vector<uint8_t>(text->begin(), text->end());
}

Status seal_to(const std::string& state_dir, const std::string& tcti, const std::string& pin) {
    auto blob = tpm::seal_secret(tcti, std::vector<uint8_t>(pin.begin(), pin.end()));
    if (!blob.ok()) return blob.status();
    return files::write_atomic(sealed_file(state_dir), std::string(blob->begin(), blob->end()), 0600);
}

}  // namespace

Result<std::string> random_pin() {
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1) return Status{ErrorCode::internal, "no randomness for a PIN"};
    std::string pin = to_hex(raw);
    OPENSSL_cleanse(raw, sizeof raw);
    return pin;
}

EmbeddedPinPlan plan_embedded_pin(const std::string& seal) {
    if (seal == "no") return {};
    if (seal.empty() || seal == "auto") {
        UniqueFd tpm(::open("/dev/tpmrm0", O_RDWR | O_CLOEXEC));
        return tpm ? EmbeddedPinPlan{kDefaultTpm} : EmbeddedPinPlan{};
    }
    return {seal};
}

Result<std::string> create_embedded_pin(const std::string& state_dir, const EmbeddedPinPlan& plan) {
    // A sealed PIN left by an initialisation that did not finish is the one to use again.
    if (exists(sealed_file(state_dir))) {
        auto blob = read_blob(sealed_file(state_dir));
        if (!blob.ok()) return blob.status();
        std::vector<uint8_t> pin;
        Status s = tpm::unseal_secret(plan.seal_tcti.empty() ? kDefaultTpm : plan.seal_tcti, blob.value(), pin);
        if (!s.ok()) return s;
        std::string text(pin.begin(), pin.end());
        OPENSSL_cleanse(pin.data(), pin.size());
        return text;
    }
    if (!plan.seal_tcti.empty()) {
        auto pin = random_pin();
        if (!pin.ok()) return pin;
        Status s = seal_to(state_dir, plan.seal_tcti, pin.value());
        if (s.ok()) {
            log::notice("the embedded token's user PIN is sealed to the TPM (" + plan.seal_tcti +
                        "): a copy of the state directory cannot be used without it");
            return pin;
        }
        return Status{s.code, "cannot seal the embedded token's PIN to the TPM " + plan.seal_tcti + ": " + s.message +
                                  " (set [agent] seal_embedded_pin = \"no\" to keep it in a file)"};
    }
    // In user.pin (read again if an earlier start wrote it and stopped before the token).
    if (auto old = files::read_file(plain_file(state_dir)); old.ok()) {
        std::string pin = old->substr(0, old->find('\n'));
        OPENSSL_cleanse(old->data(), old->size());
        if (!pin.empty()) return pin;
    }
    auto pin = random_pin();
    if (!pin.ok()) return pin;
    if (Status s = files::write_atomic(plain_file(state_dir), pin.value() + "\n", 0600); !s.ok()) return s;
    return pin;
}

Result<std::string> embedded_pin_path(const std::string& state_dir, const std::string& seal) {
    std::lock_guard lock(memory_files_mu);
    if (auto it = memory_files.find(state_dir); it != memory_files.end())
        return "/proc/self/fd/" + std::to_string(it->second.get());
    const EmbeddedPinPlan plan = plan_embedded_pin(seal);
    const bool explicit_tpm = !plan.seal_tcti.empty() && seal != "auto" && !seal.empty();
    if (!exists(sealed_file(state_dir))) {
        if (!explicit_tpm) return plain_file(state_dir);
        // Asked for a TPM with the PIN still in a file (an older agent, or the setting is
        // new): seal it, then remove the file.
        auto text = files::read_file(plain_file(state_dir));
        if (!text.ok()) return text.status();
        std::string pin = text->substr(0, text->find('\n'));
        Wiped wipe_text{text.value()}, wipe_pin{pin};
        if (Status s = seal_to(state_dir, plan.seal_tcti, pin); !s.ok())
            return Status{s.code,
                          "cannot seal the embedded token's PIN to the TPM " + plan.seal_tcti + ": " + s.message};
        ::unlink(plain_file(state_dir).c_str());
        (void)files::fsync_dir(state_dir);
        log::notice("sealed the embedded token's user PIN to the TPM (" + plan.seal_tcti + ") and removed " +
                    plain_file(state_dir));
    }
    auto blob = read_blob(sealed_file(state_dir));
    if (!blob.ok()) return blob.status();
    std::vector<uint8_t> pin;
    const std::string tcti = plan.seal_tcti.empty() ? kDefaultTpm : plan.seal_tcti;
    if (Status s = tpm::unseal_secret(tcti, blob.value(), pin); !s.ok())
        return Status{s.code, "cannot unseal the embedded token's PIN (" + sealed_file(state_dir) + ") with the TPM " +
                                  tcti + ": " + s.message};
    auto path = memory_pin_file(state_dir, pin);
    OPENSSL_cleanse(pin.data(), pin.size());
    return path;
}

}  // namespace keyward::agent
