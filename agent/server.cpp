#include "agent/server.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>

#include "agent/connection.hpp"
#include "agent/event_loop.hpp"
#include "agent/metrics.hpp"
#include "core/log.hpp"
#include "ipc/codec.hpp"

namespace keyward::agent {

namespace {

constexpr size_t kReadChunk = 64 * 1024;
// A connection keeps at most this much input capacity while idle: idle clients must not
// each pin a 64 KiB read buffer (1,000 of them would be 64 MiB).
constexpr size_t kIdleInputCapacity = 512;
// Stop reading from a client that does not read its answers once this much is queued.
constexpr size_t kMaxQueuedOutput = 1024 * 1024;
constexpr uint64_t kListenerId = 0;
constexpr uint64_t kSignalId = UINT64_MAX;
constexpr uint64_t kWakeId = UINT64_MAX - 1;  // a loop's eventfd
constexpr size_t kMaxEventLoops = 8;

int64_t steady_ns(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

void epoll_set(int epfd, int op, int fd, uint32_t events, uint64_t id) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = id;
    ::epoll_ctl(epfd, op, fd, &ev);
}

}  // namespace

Server::Server(Listener listener, std::shared_ptr<KeyRegistry> registry, std::shared_ptr<const AccessPolicy> policy,
               ReloadFn reload)
        : listener_(std::move(listener)), registry_(std::move(registry)), reload_(std::move(reload)) {
    auto state = std::make_shared<ServingState>();
    state->policy = std::move(policy);
    state_ = std::move(state);
}

Server::~Server() {
    if (doctor_thread_.joinable()) doctor_thread_.join();  // it answers through this server
    // Answers still in flight (executor jobs hold their connection) are dropped from now on;
    // the loops' epoll sets, which they might still name, close with the loops below.
    for (auto& loop : loops_) {
        std::vector<std::shared_ptr<Connection>> all;
        {
            std::lock_guard lock(loop->inbox_mu);
            all = std::move(loop->inbox);
        }
        for (auto& [id, c] : loop->connections) all.push_back(c);
        for (auto& c : all) {
            std::lock_guard lock(c->out_mu);
            c->closed = true;
        }
        loop->connections.clear();
    }
    if (signal_fd_ >= 0) ::close(signal_fd_);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

template <typename Change>
void Server::publish(Change&& change) {
    std::lock_guard lock(state_mu_);
    auto next = std::make_shared<ServingState>(*state_);
    change(*next);
    state_ = std::move(next);
    state_generation_.fetch_add(1, std::memory_order_release);
}

void Server::set_policy(std::shared_ptr<const AccessPolicy> policy) {
    publish([&](ServingState& s) { s.policy = std::move(policy); });
}

void Server::set_sign_here_limit(std::chrono::microseconds limit) { sign_here_limit_ = limit; }

void Server::set_lifecycle(std::shared_ptr<LifecycleRunner> lifecycle) {
    publish([&](ServingState& s) { s.lifecycle = std::move(lifecycle); });
}

void Server::set_identity_dirs(std::vector<std::string> dirs) {
    publish([&](ServingState& s) { s.identity_dirs = std::move(dirs); });
}

void Server::set_doctor(std::shared_ptr<const DoctorFn> doctor) {
    publish([&](ServingState& s) { s.doctor = std::move(doctor); });
}

std::vector<std::thread::id> Server::loop_threads() const {
    std::lock_guard lock(loops_mu_);
    std::vector<std::thread::id> ids;
    for (const auto& loop : loops_) ids.push_back(loop->thread.get_id());
    return ids;
}

void Server::notify(std::string_view state) {
    if (!notifier_.enabled()) return;
    const auto tokens = registry_->tokens();
    size_t present = 0;
    for (const auto& t : tokens) present += t->health.load() == DeviceHealth::present;
    notifier_.send(std::string(state) + "\nSTATUS=" + std::to_string(registry_->key_count()) + " keys on " +
                   std::to_string(present) + "/" + std::to_string(tokens.size()) + " tokens present; " +
                   std::to_string(connection_count_.load()) + " connections");
}

void Server::set_limits(const ServerLimits& limits) {
    publish([&](ServingState& s) { s.limits = limits; });
    audit_.configure(limits.audit, limits.audit_interval);
}

ServerLimits limits_for(const AgentConfig& config, size_t open_file_limit) {
    ServerLimits l;
    // Descriptors the agent needs besides connections: devices, modules, files, the loop's own.
    constexpr size_t kReserved = 64;
    const size_t room = open_file_limit > kReserved + 16 ? open_file_limit - kReserved : 16;
    l.max_connections = config.max_connections ? config.max_connections : room;
    l.max_connections_per_uid =
        config.max_connections_per_uid ? config.max_connections_per_uid : std::max<size_t>(8, l.max_connections / 4);
    l.read_timeout = std::chrono::seconds(config.read_timeout_seconds);
    l.idle_timeout = std::chrono::seconds(config.idle_timeout_seconds);
    l.audit = config.audit_every_signature ? AuditMode::every_signature : AuditMode::summary;
    l.audit_interval = std::chrono::seconds(config.audit_interval_seconds);
    return l;
}

Status Server::run() {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) return {ErrorCode::internal, std::string("epoll_create1: ") + std::strerror(errno)};
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    signal_fd_ = ::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd_ < 0) return {ErrorCode::internal, std::string("signalfd: ") + std::strerror(errno)};
    epoll_set(epoll_fd_, EPOLL_CTL_ADD, listener_.fd(), EPOLLIN, kListenerId);
    epoll_set(epoll_fd_, EPOLL_CTL_ADD, signal_fd_, EPOLLIN, kSignalId);

    size_t count = loop_count_;
    if (count == 0) count = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, kMaxEventLoops);
    for (size_t i = 0; i < count; ++i) {
        auto loop = std::make_unique<EventLoop>(i);
        loop->epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
        loop->wake.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!loop->epoll || !loop->wake) {
            stop_loops();
            return {ErrorCode::internal, std::string("cannot set up an event loop: ") + std::strerror(errno)};
        }
        epoll_set(loop->epoll.get(), EPOLL_CTL_ADD, loop->wake.get(), EPOLLIN, kWakeId);
        loop->heartbeat = steady_ns(std::chrono::steady_clock::now());
        std::lock_guard lock(loops_mu_);
        loops_.push_back(std::move(loop));
    }
    {
        std::lock_guard lock(loops_mu_);  // loop_threads() may look from another thread
        for (auto& loop : loops_) loop->thread = std::thread([this, l = loop.get()] { serve(*l); });
    }

    log::notice("serving " + std::to_string(registry_->key_count()) + " keys on " + listener_.path() + " (" +
                std::to_string(count) + " event loops)");
    notify("READY=1");
    const auto watchdog = notifier_.watchdog_interval();
    const int wait_ms = watchdog ? static_cast<int>(std::clamp<int64_t>(watchdog->count() / 1000, 1, 1000)) : 1000;
    // A loop goes round at least once a second (its sweep), or after every batch of events.
    const auto stuck_after =
        std::max<std::chrono::microseconds>(watchdog.value_or(std::chrono::seconds(3)), std::chrono::seconds(3));

    epoll_event events[16];
    for (;;) {
        int n = ::epoll_wait(epoll_fd_, events, 16, wait_ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            stop_loops();
            return {ErrorCode::internal, std::string("epoll_wait: ") + std::strerror(errno)};
        }
        const auto now = std::chrono::steady_clock::now();
        if (watchdog && now >= next_watchdog_) {
            const bool alive = loops_alive(now, stuck_after);
            if (alive) {
                notifier_.send("WATCHDOG=1");
                next_watchdog_ = now + *watchdog;
            } else if (!watchdog_withheld_) {
                log::error("an event loop has not gone round for " +
                           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(stuck_after).count()) +
                           " s; withholding the watchdog ping");
            }
            watchdog_withheld_ = !alive;
        }
        if (now - last_sweep_ >= std::chrono::seconds(1)) sweep();
        for (int i = 0; i < n; ++i) {
            if (events[i].data.u64 == kListenerId) {
                accept_all();
                continue;
            }
            signalfd_siginfo si{};
            while (::read(signal_fd_, &si, sizeof si) == sizeof si) {
                if (si.ssi_signo == SIGHUP) {
                    log::notice("SIGHUP: reloading the configuration");
                    notifier_.send("RELOADING=1\nMONOTONIC_USEC=" +
                                   std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(
                                                      std::chrono::steady_clock::now().time_since_epoch())
                                                      .count()));
                    Status s = reload_ ? reload_(*this) : Status{};
                    notify("READY=1");
                    if (!s.ok()) log::error("reload failed, keeping the running configuration: " + s.message);
                    else log::notice("configuration reloaded; " + std::to_string(registry_->key_count()) + " keys");
                } else {
                    log::notice(std::string("stopping on ") + strsignal(static_cast<int>(si.ssi_signo)));
                    notifier_.send("STOPPING=1\nSTATUS=stopping");
                    stop_loops();
                    return {};
                }
            }
        }
    }
}

bool Server::loops_alive(std::chrono::steady_clock::time_point now, std::chrono::microseconds within) const {
    const int64_t oldest = steady_ns(now) - std::chrono::duration_cast<std::chrono::nanoseconds>(within).count();
    for (const auto& loop : loops_)
        if (loop->heartbeat.load(std::memory_order_relaxed) < oldest) return false;
    return true;
}

// Loops stop where they are; their connections stay open (answers in flight may still be
// written while the tokens drain) until ~Server.
void Server::stop_loops() {
    for (auto& loop : loops_) {
        loop->stopping = true;
        const uint64_t one = 1;
        (void)!::write(loop->wake.get(), &one, sizeof one);
    }
    for (auto& loop : loops_) {
        if (loop->thread.joinable()) loop->thread.join();
        // A retired lifecycle must not be kept alive by a loop's copy of the state.
        loop->state.reset();
    }
}

void Server::refresh_state(EventLoop& loop) {
    const uint64_t now = state_generation_.load(std::memory_order_acquire);
    if (now == loop.state_generation) return;
    std::lock_guard lock(state_mu_);
    loop.state = state_;
    loop.state_generation = state_generation_.load(std::memory_order_relaxed);
}

void Server::serve(EventLoop& loop) {
    refresh_state(loop);
    epoll_event events[64];
    while (!loop.stopping.load(std::memory_order_relaxed)) {
        int n = ::epoll_wait(loop.epoll.get(), events, 64, 1000);
        const auto now = std::chrono::steady_clock::now();
        loop.heartbeat.store(steady_ns(now), std::memory_order_relaxed);
        if (n < 0) {
            if (errno == EINTR) continue;
            log::error(std::string("event loop: epoll_wait: ") + std::strerror(errno));
            return;
        }
        refresh_state(loop);
        if (now - loop.last_sweep >= std::chrono::seconds(1)) sweep_connections(loop);
        for (int i = 0; i < n; ++i) {
            const uint64_t id = events[i].data.u64;
            if (id == kWakeId) {
                uint64_t count;
                (void)!::read(loop.wake.get(), &count, sizeof count);
                adopt_new_connections(loop);
                continue;
            }
            auto it = loop.connections.find(id);
            if (it == loop.connections.end()) continue;
            std::shared_ptr<Connection> c = it->second;
            if (events[i].events & (EPOLLERR | EPOLLHUP)) {
                close_connection(c);
                continue;
            }
            // Only the last ready connection may have a signature made on this thread: the
            // others are not kept waiting behind it. Set before on_writable too, which
            // resumes reading a connection that was paused for back-pressure.
            loop.last_ready_event = i == n - 1;
            if (events[i].events & EPOLLOUT) on_writable(c);
            if ((events[i].events & EPOLLIN) && loop.connections.count(id)) on_readable(c);
        }
    }
}

void Server::adopt_new_connections(EventLoop& loop) {
    std::vector<std::shared_ptr<Connection>> arrived;
    {
        std::lock_guard lock(loop.inbox_mu);
        arrived.swap(loop.inbox);
    }
    for (auto& c : arrived) {
        loop.connections.emplace(c->id, c);
        epoll_set(loop.epoll.get(), EPOLL_CTL_ADD, c->fd, EPOLLIN, c->id);
    }
}

EventLoop& Server::least_loaded_loop() {
    EventLoop* best = loops_.front().get();
    for (auto& loop : loops_)
        if (loop->load.load(std::memory_order_relaxed) < best->load.load(std::memory_order_relaxed)) best = loop.get();
    return *best;
}

void Server::resume_listener() {
    if (listener_paused_.exchange(false)) epoll_set(epoll_fd_, EPOLL_CTL_ADD, listener_.fd(), EPOLLIN, kListenerId);
}

void Server::accept_all() {
    ServerLimits limits;
    {
        std::lock_guard lock(state_mu_);
        limits = state_->limits;
    }
    for (;;) {
        int fd = ::accept4(listener_.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) continue;
            if (errno == EMFILE || errno == ENFILE) {
                ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listener_.fd(), nullptr);
                listener_paused_ = true;
                if (refusals_.allow(0)) {
                    log::warning(std::string("accept: ") + std::strerror(errno) + " with " +
                                 std::to_string(connection_count_.load()) +
                                 " connections open; not accepting until one closes");
                }
            } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                log::warning(std::string("accept: ") + std::strerror(errno));
            }
            return;
        }
        auto caller = peer_of(fd);
        if (!caller) {
            log::warning(std::string("cannot tell who connected, dropping the connection: ") + std::strerror(errno));
            ::close(fd);
            continue;
        }
        const bool exempt = caller->uid() == 0 || caller->uid() == agent_uid_;
        std::string refused;
        {
            std::lock_guard lock(per_uid_mu_);
            size_t& mine = connections_per_uid_[caller->uid()];
            if (connection_count_.load() >= limits.max_connections) {
                refused = "the agent's connection limit (" + std::to_string(limits.max_connections) + ") is reached";
            } else if (!exempt && mine >= limits.max_connections_per_uid) {
                refused = "uid " + std::to_string(caller->uid()) + " has " + std::to_string(mine) +
                          " connections open, the limit per user";
            } else {
                ++mine;
                connection_count_.fetch_add(1);
            }
            if (mine == 0) connections_per_uid_.erase(caller->uid());
        }
        if (!refused.empty()) {
            refuse(fd, *caller, refused);
            continue;
        }
        caller->set_exe(executable_of(caller->pid()));
        EventLoop& loop = least_loaded_loop();
        auto c = std::make_shared<Connection>(next_conn_id_.fetch_add(1), fd, std::move(*caller), &loop);
        if (log::enabled(log::Level::debug))
            log::debug("connection " + std::to_string(c->id) + " from " + who(*c) + " on event loop " +
                       std::to_string(loop.index));
        loop.load.fetch_add(1, std::memory_order_relaxed);
        {
            std::lock_guard lock(loop.inbox_mu);
            loop.inbox.push_back(std::move(c));
        }
        const uint64_t one = 1;
        (void)!::write(loop.wake.get(), &one, sizeof one);
    }
}

void Server::refuse(int fd, const Caller& caller, const std::string& why) {
    std::vector<uint8_t> out;
    ipc::encode_error(out, 0, 0, {ErrorCode::busy, "keywardd refused the connection: " + why});
    (void)!::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::close(fd);
    if (refusals_.allow(caller.uid()))
        log::warning("refused a connection from uid=" + std::to_string(caller.uid()) +
                     " pid=" + std::to_string(caller.pid()) + ": " + why);
}

void Server::sweep() {
    const auto now = std::chrono::steady_clock::now();
    last_sweep_ = now;
    // A connection closed since: a descriptor may be free again.
    if (listener_paused_.load()) resume_listener();
    audit_.flush(now);
    for (const auto& line : denials_.summaries(now)) log::warning(line);
    for (const auto& line : refusals_.summaries(now)) log::warning(line);
}

void Server::sweep_connections(EventLoop& loop) {
    const auto now = std::chrono::steady_clock::now();
    loop.last_sweep = now;
    const ServerLimits& limits = loop.state->limits;
    std::vector<std::shared_ptr<Connection>> expired;
    for (auto& [id, c] : loop.connections) {
        if (!c->in.empty() && now - c->frame_started > limits.read_timeout) {
            if (denials_.allow(c->caller.uid()))
                log::warning("connection " + std::to_string(id) + " (" + who(*c) +
                             "): a frame was not completed within " + std::to_string(limits.read_timeout.count()) +
                             " s; closing");
            expired.push_back(c);
        } else if (c->in.empty() && c->in_flight.load() == 0 && c->queued_output.load() == 0 &&
                   now - c->last_activity > limits.idle_timeout) {
            if (log::enabled(log::Level::debug)) log::debug("connection " + std::to_string(id) + " idle; closing");
            expired.push_back(c);
        }
    }
    for (auto& c : expired) close_connection(c);
}

// Loop thread of the connection.
void Server::close_connection(const std::shared_ptr<Connection>& c) {
    {
        std::lock_guard lock(c->out_mu);
        c->closed = true;
    }
    EventLoop& loop = *c->loop;
    ::epoll_ctl(loop.epoll.get(), EPOLL_CTL_DEL, c->fd, nullptr);
    ::shutdown(c->fd, SHUT_RDWR);  // the fd itself closes with the last reference
    if (loop.connections.erase(c->id)) {
        loop.load.fetch_sub(1, std::memory_order_relaxed);
        connection_count_.fetch_sub(1);
        std::lock_guard lock(per_uid_mu_);
        auto it = connections_per_uid_.find(c->caller.uid());
        if (it != connections_per_uid_.end() && --it->second == 0) connections_per_uid_.erase(it);
    }
    // A descriptor may be free again (answers in flight may still hold this one).
    if (listener_paused_.load(std::memory_order_relaxed)) resume_listener();
}

void Server::on_readable(const std::shared_ptr<Connection>& c) {
    // One scratch buffer per event loop thread: a connection only keeps
    // the bytes of a frame not yet complete, and a read no longer zero-fills 64 KiB.
    static thread_local std::vector<uint8_t> scratch(kReadChunk);
    size_t total = 0;
    for (;;) {
        ssize_t n = ::recv(c->fd, scratch.data(), scratch.size(), 0);
        if (n > 0) {
            c->last_activity = std::chrono::steady_clock::now();
            if (c->in.empty()) c->frame_started = c->last_activity;
            c->in.insert(c->in.end(), scratch.data(), scratch.data() + n);
            total += static_cast<size_t>(n);
            if (static_cast<size_t>(n) < kReadChunk || total >= 4 * kReadChunk) break;  // be fair to others
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        // EOF or error: answers still in flight are dropped with the connection.
        close_connection(c);
        return;
    }
    process_input(c);
}

void Server::process_input(const std::shared_ptr<Connection>& c) {
    size_t off = 0;
    while (!c->close_when_flushed) {
        if (c->queued_output.load(std::memory_order_relaxed) > kMaxQueuedOutput) {
            std::lock_guard lock(c->out_mu);  // rare: re-check and switch to write-only under the lock
            if (c->out.size() - c->out_off > kMaxQueuedOutput) {
                c->reading_paused = true;
                epoll_set(c->loop->epoll.get(), EPOLL_CTL_MOD, c->fd, EPOLLOUT, c->id);
                break;
            }
        }
        auto parsed = ipc::parse_frame(std::span<const uint8_t>(c->in).subspan(off));
        if (parsed.state == ipc::ParseState::incomplete) break;
        if (parsed.state == ipc::ParseState::invalid) {
            // The stream cannot be resynchronised: say why, then hang up.
            log::warning("connection " + std::to_string(c->id) + " (" + who(*c) + "): " + parsed.error.message);
            reply_error(c, 0, 0, parsed.error);
            c->close_when_flushed = true;
            off = c->in.size();
            break;
        }
        const auto& h = parsed.frame.header;
        if (h.version != ipc::kProtocolVersion) {
            reply_error(c, h.request_id, h.base_op(),
                        {ErrorCode::unsupported_version, "protocol version " + std::to_string(h.version) +
                                                             " is not supported (this agent speaks " +
                                                             std::to_string(ipc::kProtocolVersion) + ")"});
        } else if (h.is_response() || h.status != 0) {
            reply_error(c, h.request_id, h.base_op(), {ErrorCode::bad_request, "expected a request frame"});
        } else {
            // A frame followed by more input is never signed here: the next one waits for it.
            c->loop->nothing_queued_behind = c->loop->last_ready_event && c->in.size() == off + parsed.consumed;
            handle_frame(c, h.op, h.request_id, parsed.frame.body);
            c->loop->nothing_queued_behind = false;
        }
        off += parsed.consumed;
    }
    c->in.erase(c->in.begin(), c->in.begin() + static_cast<long>(off));
    // What is left is the start of the next frame: its clock starts now.
    if (off > 0 && !c->in.empty()) c->frame_started = std::chrono::steady_clock::now();
    if (c->in.empty() && c->in.capacity() > kIdleInputCapacity) std::vector<uint8_t>().swap(c->in);
    bool closed;
    {
        std::lock_guard lock(c->out_mu);
        if (c->close_when_flushed && c->out_off == c->out.size()) c->closed = true;
        closed = c->closed;
    }
    if (closed) close_connection(c);
}

void Server::on_writable(const std::shared_ptr<Connection>& c) {
    bool resume = false, done = false;
    {
        std::lock_guard lock(c->out_mu);
        while (c->out_off < c->out.size()) {
            ssize_t n =
                ::send(c->fd, c->out.data() + c->out_off, c->out.size() - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                c->out_off += static_cast<size_t>(n);
                c->queued_output.store(c->out.size() - c->out_off, std::memory_order_relaxed);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            c->closed = true;
            break;
        }
        if (c->out_off == c->out.size()) {
            std::vector<uint8_t>().swap(c->out);  // drained: give the memory back
            c->out_off = 0;
            c->queued_output.store(0, std::memory_order_relaxed);
            c->want_write = false;
            resume = c->reading_paused;
            done = c->close_when_flushed;
            if (!c->closed && !done) epoll_set(c->loop->epoll.get(), EPOLL_CTL_MOD, c->fd, EPOLLIN, c->id);
        }
        done = done || c->closed;
    }
    if (done) {
        close_connection(c);
        return;
    }
    if (resume) {
        c->reading_paused = false;
        process_input(c);
    }
}

// Thread-safe: called by the event loop and by executor threads.
void Server::send(const std::shared_ptr<Connection>& c, std::vector<uint8_t>&& frame) {
    std::lock_guard lock(c->out_mu);
    if (c->closed) return;
    size_t off = 0;
    if (c->out_off == c->out.size()) {  // nothing queued: try to write straight away
        while (off < frame.size()) {
            ssize_t n = ::send(c->fd, frame.data() + off, frame.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                off += static_cast<size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            break;  // EAGAIN: queue the rest; a real error shows up as EPOLLERR/HUP in the loop
        }
        if (off == frame.size()) return;
        c->out.clear();
        c->out_off = 0;
    }
    c->out.insert(c->out.end(), frame.begin() + static_cast<long>(off), frame.end());
    c->queued_output.store(c->out.size() - c->out_off, std::memory_order_relaxed);
    if (!c->want_write) {
        c->want_write = true;
        epoll_set(c->loop->epoll.get(), EPOLL_CTL_MOD, c->fd, c->reading_paused ? EPOLLOUT : (EPOLLIN | EPOLLOUT),
                  c->id);
    }
}

void Server::reply_error(const std::shared_ptr<Connection>& c, uint32_t id, uint8_t op, const Status& status) {
    std::vector<uint8_t> out;
    ipc::encode_error(out, id, op, status);
    send(c, std::move(out));
}

void Server::deny(const std::shared_ptr<Connection>& c, uint32_t id, uint8_t op, const std::string& key,
                  std::string_view action, Right right) {
    metrics::signing_counters().denial(c->caller.uid());
    if (denials_.allow(c->caller.uid()))
        log::warning("access denied: " + who(*c) + " may not " + std::string(action) +
                     (key.empty() ? std::string() : " key=" + log::client_text(key)));
    const std::string uid = std::to_string(c->caller.uid());
    std::string message = key.empty() ? "access denied: uid " + uid + " may not " + std::string(action) + " keys"
                                      : "access to key " + log::client_text(key, 256) + " denied for uid " + uid;
    // Say which setting grants what was asked, so the hint points at the right one.
    message += right == Right::manage ? " (managing keys: admin_users / admin_groups)"
                                      : " (using a key: allow_users / allow_groups)";
    reply_error(c, id, op, {ErrorCode::access_denied, message});
}

bool Server::submit(const std::shared_ptr<Connection>& c, uint32_t id, uint8_t op, Token& token,
                    std::function<void()> job, bool may_run_here) {
    if (c->in_flight.load() >= kMaxInFlightPerConnection) {
        reply_error(c, id, op,
                    {ErrorCode::busy, "more than " + std::to_string(kMaxInFlightPerConnection) +
                                          " requests in flight on one connection"});
        return false;
    }
    c->in_flight.fetch_add(1);
    if (may_run_here && token.executor->try_run_here(job)) return true;
    if (!token.executor->try_submit(std::move(job), c->caller.uid())) {
        c->in_flight.fetch_sub(1);
        reply_error(c, id, op, {ErrorCode::busy, "token " + token.name + " is saturated; retry later"});
        return false;
    }
    return true;
}

}  // namespace keyward::agent
