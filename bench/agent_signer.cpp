// Signing through keywardd with the client library: one Client shared by every thread
// (what the provider does inside a process) or one Client per thread.
#include <memory>

#include "bench/signers.hpp"
#include "ipc/client.hpp"

namespace keyward::bench {
namespace {

class AgentThreadSigner : public ThreadSigner {
public:
    AgentThreadSigner(std::shared_ptr<Client> client, std::string key, ipc::Scheme scheme)
            : client_(std::move(client)), key_(std::move(key)), scheme_(scheme) {}

    bool sign_once(std::string& error) override {
        auto r = client_->sign(key_, scheme_, std::span<const uint8_t>(kDigest, sizeof kDigest));
        if (!r.ok()) {
            error = "sign: " + r.status().message;
            return false;
        }
        return true;
    }

private:
    std::shared_ptr<Client> client_;
    std::string key_;
    ipc::Scheme scheme_;
};

class AgentSigner : public Signer {
public:
    AgentSigner(const Options& o, KeyKind kind)
            : socket_(o.get("socket")),
              key_(o.get("key")),
              per_thread_(o.get("client", "shared") == "per-thread"),
              scheme_(kind == KeyKind::ec_p256 ? ipc::Scheme::ecdsa_secp256r1_sha256 : ipc::Scheme::rsa_pkcs1_sha256) {}

    bool setup(std::string& error) {
        if (key_.empty()) {
            error = "keyward needs --key (and --socket or KEYWARD_SOCKET)";
            return false;
        }
        if (!per_thread_) {
            shared_ = new_client();
            Status s = shared_->connect();
            if (!s.ok()) {
                error = "connect: " + s.message;
                return false;
            }
        }
        return true;
    }

    std::unique_ptr<ThreadSigner> for_thread(std::string& error) override {
        auto client = per_thread_ ? new_client() : shared_;
        Status s = client->connect();
        if (!s.ok()) {
            error = "connect: " + s.message;
            return nullptr;
        }
        return std::make_unique<AgentThreadSigner>(client, key_, scheme_);
    }

private:
    std::shared_ptr<Client> new_client() const {
        ClientOptions co;
        co.socket_path = socket_;
        co.client_name = "keyward-bench-sign";
        return std::make_shared<Client>(co);
    }

    std::string socket_;
    std::string key_;
    bool per_thread_;
    ipc::Scheme scheme_;
    std::shared_ptr<Client> shared_;
};

}  // namespace

std::unique_ptr<Signer> make_agent_signer(const Options& o, KeyKind kind, std::string& error) {
    auto s = std::make_unique<AgentSigner>(o, kind);
    if (!s->setup(error)) return nullptr;
    return s;
}

}  // namespace keyward::bench
