// keywardd's event loop: accepts connections, reads frames, checks who is asking, answers
// cheap requests at once and hands device work to the token executors, whose threads
// write the answers back themselves (so a signature costs no extra thread hop). A fast
// signature with nothing else waiting is made on the loop's thread (no hop at all).
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "agent/audit.hpp"
#include "agent/config.hpp"
#include "agent/key_registry.hpp"
#include "agent/lifecycle_runner.hpp"
#include "agent/listener.hpp"
#include "agent/log_limiter.hpp"
#include "agent/systemd.hpp"
#include "agent/policy.hpp"

namespace keyward::agent {

inline constexpr uint32_t kMaxInFlightPerConnection = 128;

// What one caller may hold of the agent: every local process that reaches the socket may
// be hostile to the others (docs/security.md).
struct ServerLimits {
    size_t max_connections = 1000;
    size_t max_connections_per_uid = 250;  // root and the agent's own uid are exempt
    std::chrono::seconds read_timeout{10};
    std::chrono::seconds idle_timeout{600};
    AuditMode audit = AuditMode::summary;
    std::chrono::seconds audit_interval{600};
};
// Limits from the configuration, with the connection caps sized from the open-file limit
// where the configuration leaves them at 0.
ServerLimits limits_for(const AgentConfig& config, size_t open_file_limit);

struct Connection;

class Server {
public:
    // `reload` re-reads the configuration on SIGHUP and returns the new policy and
    // tokens (it may reuse tokens); on error the running state is kept.
    using ReloadFn = std::function<Status(Server&)>;

    Server(Listener listener, std::shared_ptr<KeyRegistry> registry, std::shared_ptr<const AccessPolicy> policy,
           ReloadFn reload);
    ~Server();

    // Runs until SIGTERM/SIGINT. Signals must be blocked in every thread beforehand.
    Status run();

    void set_policy(std::shared_ptr<const AccessPolicy> policy);
    // Keys that sign faster than this (running average) may be signed on the event loop's
    // thread; 200 µs by default. Call before run().
    void set_sign_here_limit(std::chrono::microseconds limit);
    // Identities; null when none are configured. Replace only from the event loop (reload).
    void set_lifecycle(std::shared_ptr<LifecycleRunner> lifecycle);
    // Where the identities keep their certificates (lifecycle::identity_dir): GET_KEY
    // answers carry the certificate chain of the identity whose current key it is.
    void set_identity_dirs(std::vector<std::string> dirs) { identity_dirs_ = std::move(dirs); }
    // From the event loop (or before run()): applies to new connections and the next sweep.
    void set_limits(const ServerLimits& limits);
    // Before run(): where readiness, status and watchdog pings go (systemd).
    void set_notifier(Notifier notifier) { notifier_ = std::move(notifier); }
    KeyRegistry& registry() { return *registry_; }
    // Answers DOCTOR requests (agent/doctor.hpp); it blocks, so it runs on a thread of its
    // own, one at a time. Replace only from the event loop (reload).
    using DoctorFn = std::function<std::string()>;
    void set_doctor(std::shared_ptr<const DoctorFn> doctor) { doctor_ = std::move(doctor); }

private:
    void accept_all();
    // Refuses a connection over a cap: one `busy` frame, then close.
    void refuse(int fd, const Caller& caller, const std::string& why);
    // Once a second: timeouts, a listener paused for want of descriptors, log summaries.
    void sweep();
    void on_readable(const std::shared_ptr<Connection>& c);
    void on_writable(const std::shared_ptr<Connection>& c);
    void process_input(const std::shared_ptr<Connection>& c);
    void close_connection(const std::shared_ptr<Connection>& c);
    void handle_frame(const std::shared_ptr<Connection>& c, uint8_t op, uint32_t id, std::span<const uint8_t> body);
    void handle_sign(const std::shared_ptr<Connection>& c, uint32_t id, std::span<const uint8_t> body);
    void handle_generate(const std::shared_ptr<Connection>& c, uint32_t id, std::span<const uint8_t> body);
    void handle_import(const std::shared_ptr<Connection>& c, uint32_t id, std::span<const uint8_t> body);
    // Checks rights, name and token for a key about to be created; null after replying an error.
    Token* new_key_target(const std::shared_ptr<Connection>& c, uint32_t id, uint8_t op, const std::string& name,
                          const std::string& token_name, std::string_view action);
    // Runs on an executor: registers a key the device just made (or adopted) and answers.
    void answer_new_key(const std::shared_ptr<Connection>& c, uint32_t id, ipc::Op op, Token* token,
                        const std::string& name, Result<BackendKey> made);
    void handle_identity_op(const std::shared_ptr<Connection>& c, ipc::Op op, uint32_t id,
                            std::span<const uint8_t> body);
    void handle_doctor(const std::shared_ptr<Connection>& c, uint32_t id);
    void handle_delete(const std::shared_ptr<Connection>& c, uint32_t id, std::span<const uint8_t> body);
    void reply_error(const std::shared_ptr<Connection>& c, uint32_t id, uint8_t op, const Status& status);
    enum class Right { use, manage };
    void deny(const std::shared_ptr<Connection>& c, uint32_t id, uint8_t op, const std::string& key,
              std::string_view action, Right right = Right::use);
    // Hands `job` to the token's workers, or runs it right here when `may_run_here` and
    // the device has a free slot.
    bool submit(const std::shared_ptr<Connection>& c, uint32_t id, uint8_t op, Token& token, std::function<void()> job,
                bool may_run_here = false);
    void send(const std::shared_ptr<Connection>& c, std::vector<uint8_t>&& frame);

    Listener listener_;
    std::shared_ptr<KeyRegistry> registry_;
    std::shared_ptr<const AccessPolicy> policy_;
    ReloadFn reload_;
    std::shared_ptr<LifecycleRunner> lifecycle_;
    std::vector<std::string> identity_dirs_;
    int epoll_fd_ = -1;
    int signal_fd_ = -1;
    uint64_t next_conn_id_ = 1;
    std::chrono::microseconds sign_here_limit_{200};
    // Set by the event loop around each request: nothing else is ready to be read or
    // parsed, so a fast signature may be made on the loop's own thread.
    bool last_ready_event_ = false;
    bool nothing_queued_behind_ = false;
    std::unordered_map<uint64_t, std::shared_ptr<Connection>> connections_;
    std::unordered_map<uid_t, size_t> connections_per_uid_;
    ServerLimits limits_;
    uid_t agent_uid_ = ::getuid();
    // Out of descriptors (EMFILE/ENFILE): the level-triggered listener would stay readable
    // and spin the loop, so it leaves epoll until a connection closes.
    bool listener_paused_ = false;
    std::chrono::steady_clock::time_point last_sweep_{};
    Audit audit_;
    Notifier notifier_;
    std::chrono::steady_clock::time_point next_watchdog_{};
    // "READY=1"-style state plus a STATUS= line for systemctl status.
    void notify(std::string_view state);
    LogLimiter denials_{"denials", 5, std::chrono::seconds(60)};
    LogLimiter refusals_{"refused connections", 3, std::chrono::seconds(60)};
    std::shared_ptr<const DoctorFn> doctor_;
    std::thread doctor_thread_;  // joined when done: before the next one, and by ~Server
    std::atomic<bool> doctor_running_{false};
    std::atomic<uint64_t> signatures_{0};
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace keyward::agent
