// The client of the ideal socket agent (bench/ideal_agent.cpp): one Unix-socket connection
// per thread, write the digest, read the answer. The least CPU a client of any agent spends.
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include "bench/ideal_wire.hpp"
#include "bench/signers.hpp"
#include "core/unique_fd.hpp"

namespace keyward::bench {
namespace {

class IdealThreadSigner : public ThreadSigner {
public:
    explicit IdealThreadSigner(UniqueFd fd) : fd_(std::move(fd)) {}

    bool sign_once(std::string& error) override {
        if (!ideal::write_full(fd_.get(), kDigest, sizeof kDigest)) {
            error = "ideal agent: write failed";
            return false;
        }
        unsigned char answer[2 + ideal::kMaxSignature];
        if (!ideal::read_full(fd_.get(), answer, 2)) {
            error = "ideal agent: connection closed";
            return false;
        }
        const size_t len = (size_t{answer[0]} << 8) | answer[1];
        if (len == 0 || len > ideal::kMaxSignature || !ideal::read_full(fd_.get(), answer + 2, len)) {
            error = "ideal agent: the signature failed (see its log)";
            return false;
        }
        return true;
    }

private:
    UniqueFd fd_;
};

class IdealSigner : public Signer {
public:
    explicit IdealSigner(std::string path) : path_(std::move(path)) {}

    std::unique_ptr<ThreadSigner> for_thread(std::string& error) override {
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (!fd || path_.empty() || path_.size() >= sizeof addr.sun_path) {
            error = "ideal agent: bad --socket";
            return nullptr;
        }
        std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            error = "ideal agent: cannot connect to " + path_ + ": " + std::strerror(errno);
            return nullptr;
        }
        return std::make_unique<IdealThreadSigner>(std::move(fd));
    }

private:
    std::string path_;
};

}  // namespace

std::unique_ptr<Signer> make_ideal_signer(const Options& o, KeyKind, std::string& error) {
    if (o.get("socket").empty()) {
        error = "ideal needs --socket";
        return nullptr;
    }
    return std::make_unique<IdealSigner>(o.get("socket"));
}

}  // namespace keyward::bench
