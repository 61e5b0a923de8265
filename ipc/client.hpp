// libkeyward-client: talks to keywardd over its Unix socket.
//
// Threading: one Client may be shared by any number of threads. It opens up to one
// connection per CPU (ClientOptions::connections), lazily, and each thread keeps to one of
// them; threads on one connection pipeline their requests and answers are matched by
// request id, so a slow key never holds up a fast one. Nothing throws; every call returns
// a Status or Result.
//
// Fork: the socket is CLOEXEC, and a child that inherited a connected Client drops the
// inherited connection (without touching the parent's stream) and reconnects on first use.
// Reconnect: a broken connection is reopened by the next call; a SIGN that was lost with
// the connection is retried once on the new one (signing is idempotent). Mutating calls
// (generate, delete) are never retried behind the caller's back.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/protocol.hpp"
#include "core/result.hpp"

namespace keyward {

// Socket path resolution shared by the CLI, the provider and the engine:
// explicit value, else $KEYWARD_SOCKET, else the system default.
inline constexpr std::string_view kDefaultSocketPath = "/run/keyward/agent.sock";
std::string resolve_socket_path(std::string_view explicit_path = {});

// A timeout in seconds as people write it ("5", "2.5"): the explicit value, else
// $KEYWARD_TIMEOUT, else `fallback`. Values that are not a positive number are ignored.
std::chrono::milliseconds resolve_timeout(std::string_view explicit_seconds, std::chrono::milliseconds fallback);

struct ClientOptions {
    std::string socket_path;  // empty: resolve_socket_path()
    // Per call. A hung agent costs a caller at most this much per operation.
    std::chrono::milliseconds timeout = resolve_timeout({}, std::chrono::seconds(30));
    std::string client_name = "libkeyward-client";
    // Connecting and HELLO, within `timeout`: short, because a healthy agent answers HELLO
    // at once and a stopped one should not hold a TLS handshake for the full timeout.
    std::chrono::milliseconds connect_timeout = std::chrono::seconds(5);
    // Connections shared out among the calling threads; 0: $KEYWARD_CONNECTIONS, else one
    // per CPU; at most 8. A single-threaded caller only ever opens one.
    size_t connections = 0;
};

class Client {
public:
    explicit Client(ClientOptions options = {});
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    const std::string& socket_path() const noexcept;

    // Connects the calling thread's connection (and says HELLO) if not connected yet. Other
    // calls do this implicitly.
    Status connect();
    // The agent's HELLO answer on the calling thread's connection.
    Result<ipc::HelloResponse> hello();

    Result<ipc::StatusResponse> status();
    Result<std::vector<ipc::KeyInfo>> list_keys();
    Result<ipc::KeyInfo> get_key(std::string_view name);
    Result<std::vector<uint8_t>> sign(std::string_view key, ipc::Scheme scheme, std::span<const uint8_t> digest);
    Result<ipc::KeyInfo> generate_key(const ipc::GenerateKeyRequest& request);
    Result<ipc::KeyInfo> import_key(const ipc::ImportKeyRequest& request);
    Status delete_key(std::string_view name);

    // Certificate identities; answers are JSON views (docs/renewal.md).
    Result<std::string> list_identities();
    // The agent's health checks (agent/doctor.hpp), a JSON document; admins only.
    Result<std::string> doctor();
    Result<std::string> get_identity(std::string_view name);
    Result<std::string> renew(std::string_view name, uint8_t flags);  // ipc::kRenewNow | ipc::kRenewRekey
    Result<std::string> rollback(std::string_view name);
    Result<std::string> revoke(const ipc::RevokeRequest& request);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace keyward
