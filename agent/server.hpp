// keywardd's server: the main thread accepts connections and handles signals, reloads and
// the watchdog; each connection then belongs to one of several event loops (one per CPU by
// default), which read its frames, check who is asking, answer cheap requests at once and
// hand device work to the token executors, whose threads write the answers back themselves
// (so a signature costs no extra thread hop). A fast signature with nothing else waiting
// on its loop is made on that loop's thread (no hop at all) while the device has a free
// share: with a loop per CPU, concurrent callers are signed in parallel without hand-offs.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
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
struct EventLoop;
class Server;

// What a reload may replace, published to the event loops as one immutable snapshot: a
// loop picks up the newest one between two rounds of events, so a request never sees
// half of a reload.
struct ServingState {
    std::shared_ptr<const AccessPolicy> policy;
    std::shared_ptr<LifecycleRunner> lifecycle;
    // Where the identities keep their certificates (lifecycle::identity_dir): GET_KEY
    // answers carry the certificate chain of the identity whose current key it is.
    std::vector<std::string> identity_dirs;
    ServerLimits limits;
    std::shared_ptr<const std::function<std::string()>> doctor;
};

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
    // Keys that sign faster than this (running average) may be signed on an event loop's
    // thread; 200 µs by default. Call before run().
    void set_sign_here_limit(std::chrono::microseconds limit);
    // How many event loops serve connections; 0 (the default): one per CPU, at most 8.
    // Call before run().
    void set_event_loops(size_t loops) { loop_count_ = loops; }
    // The threads of the event loops while run() runs (tests check where work happened).
    std::vector<std::thread::id> loop_threads() const;
    // The setters below may be called before run() or from the reload function (the main
    // thread); the event loops see the change from their next round of events.
    // Identities; null when none are configured.
    void set_lifecycle(std::shared_ptr<LifecycleRunner> lifecycle);
    void set_identity_dirs(std::vector<std::string> dirs);
    // Applies to new connections and the next sweep.
    void set_limits(const ServerLimits& limits);
    // Before run(): where readiness, status and watchdog pings go (systemd).
    void set_notifier(Notifier notifier) { notifier_ = std::move(notifier); }
    KeyRegistry& registry() { return *registry_; }
    // Answers DOCTOR requests (agent/doctor.hpp); it blocks, so it runs on a thread of its
    // own, one at a time.
    using DoctorFn = std::function<std::string()>;
    void set_doctor(std::shared_ptr<const DoctorFn> doctor);

private:
    // Replaces part of the serving state (main thread) and tells the loops.
    template <typename Change>
    void publish(Change&& change);
    // One event loop's thread: its connections' events until stop_loops().
    void serve(EventLoop& loop);
    // The newest serving state, when the loop's copy is older. Loop thread.
    void refresh_state(EventLoop& loop);
    // Connections the acceptor handed to `loop` join its epoll set. Loop thread.
    void adopt_new_connections(EventLoop& loop);
    void stop_loops();
    // The loop with the fewest connections.
    EventLoop& least_loaded_loop();
    // Every loop went round recently: the main thread pings the watchdog only then, so a
    // loop stuck in a call stops the pings and systemd restarts the agent.
    bool loops_alive(std::chrono::steady_clock::time_point now, std::chrono::microseconds within) const;
    void accept_all();
    // Refuses a connection over a cap: one `busy` frame, then close.
    void refuse(int fd, const Caller& caller, const std::string& why);
    // Once a second on the main thread: a listener paused for want of descriptors, audit and
    // log summaries.
    void sweep();
    // Once a second on each loop: read and idle timeouts of its connections.
    void sweep_connections(EventLoop& loop);
    // The listener leaves epoll when descriptors run out; back in when one may be free.
    void resume_listener();
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
    ReloadFn reload_;
    // The serving state and its generation (bumped by every publish). Loops compare the
    // generation, a relaxed read, and copy the snapshot under the mutex only when it moved.
    mutable std::mutex state_mu_;
    std::shared_ptr<const ServingState> state_;
    std::atomic<uint64_t> state_generation_{1};
    int epoll_fd_ = -1;  // the main thread's: listener and signals
    int signal_fd_ = -1;
    std::atomic<uint64_t> next_conn_id_{1};
    std::chrono::microseconds sign_here_limit_{200};
    size_t loop_count_ = 0;
    std::vector<std::unique_ptr<EventLoop>> loops_;  // set up by run(), before any connection
    mutable std::mutex loops_mu_;                    // for loop_threads() from other threads
    // Connections across all loops: accepted on the main thread, closed on their loop's.
    std::atomic<size_t> connection_count_{0};
    std::mutex per_uid_mu_;
    std::unordered_map<uid_t, size_t> connections_per_uid_;
    uid_t agent_uid_ = ::getuid();
    // Out of descriptors (EMFILE/ENFILE): the level-triggered listener would stay readable
    // and spin the main loop, so it leaves epoll until a connection closes.
    std::atomic<bool> listener_paused_{false};
    std::chrono::steady_clock::time_point last_sweep_{};
    Audit audit_;
    Notifier notifier_;
    std::chrono::steady_clock::time_point next_watchdog_{};
    bool watchdog_withheld_ = false;
    // "READY=1"-style state plus a STATUS= line for systemctl status.
    void notify(std::string_view state);
    LogLimiter denials_{"denials", 5, std::chrono::seconds(60)};
    LogLimiter refusals_{"refused connections", 3, std::chrono::seconds(60)};
    std::thread doctor_thread_;  // joined when done: before the next one, and by ~Server
    std::atomic<bool> doctor_running_{false};
    std::atomic<uint64_t> signatures_{0};
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace keyward::agent
