#include "agent/server.hpp"

#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>

#include "core/log.hpp"
#include "ipc/codec.hpp"

namespace keyward {

// One client connection. The event loop owns the input side; the output buffer is shared
// with the executor threads that write answers, hence its mutex.
struct Connection {
    Connection(uint64_t id_, int fd_, Caller caller_) : id(id_), fd(fd_), caller(caller_) {}
    ~Connection() { ::close(fd); }  // only when the last answer in flight let go of it

    const uint64_t id;
    const int fd;
    const Caller caller;

    std::vector<uint8_t> in;  // event loop only
    bool reading_paused = false;
    bool close_when_flushed = false;

    std::mutex out_mu;
    std::vector<uint8_t> out;
    size_t out_off = 0;
    bool closed = false;
    bool want_write = false;

    std::atomic<uint32_t> in_flight{0};
    // out.size() - out_off, kept beside the buffer so that the event loop can apply
    // back-pressure without taking out_mu (which executor threads hold while they send).
    std::atomic<size_t> queued_output{0};
};

namespace {

constexpr size_t kReadChunk = 64 * 1024;
// A connection keeps at most this much input capacity while idle: idle clients must not
// each pin a 64 KiB read buffer (1,000 of them would be 64 MiB).
constexpr size_t kIdleInputCapacity = 512;
// Stop reading from a client that does not read its answers once this much is queued.
constexpr size_t kMaxQueuedOutput = 1024 * 1024;
constexpr uint64_t kListenerId = 0;
constexpr uint64_t kSignalId = UINT64_MAX;

std::string who(const Connection& c) {
    return "uid=" + std::to_string(c.caller.uid()) + " pid=" + std::to_string(c.caller.pid());
}

// Each new time weighs half: a key proves itself fast (or slow) within a few signatures,
// and a single fast one does not make a slow key fast (600 µs and then 50 µs is 325).
// Relaxed races between threads only blur the average.
void note_sign_time(std::atomic<uint32_t>& average, std::chrono::steady_clock::duration took) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(took).count();
    const uint32_t now = static_cast<uint32_t>(std::clamp<int64_t>(us, 0, UINT32_MAX - 1));
    const uint32_t was = average.load(std::memory_order_relaxed);
    average.store(was == UINT32_MAX ? now : static_cast<uint32_t>((uint64_t{was} + now) / 2),
                  std::memory_order_relaxed);
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
    : listener_(std::move(listener)),
      registry_(std::move(registry)),
      policy_(std::move(policy)),
      reload_(std::move(reload)) {}

Server::~Server() {
    for (auto& [id, c] : connections_) {
        std::lock_guard lock(c->out_mu);
        c->closed = true;
    }
    connections_.clear();
    if (signal_fd_ >= 0) ::close(signal_fd_);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void Server::set_policy(std::shared_ptr<const AccessPolicy> policy) { policy_ = std::move(policy); }

void Server::set_sign_here_limit(std::chrono::microseconds limit) { sign_here_limit_ = limit; }

void Server::set_lifecycle(std::shared_ptr<LifecycleRunner> lifecycle) { lifecycle_ = std::move(lifecycle); }

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
    log::notice("serving " + std::to_string(registry_->key_count()) + " keys on " + listener_.path());

    epoll_event events[64];
    for (;;) {
        int n = ::epoll_wait(epoll_fd_, events, 64, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return {ErrorCode::internal, std::string("epoll_wait: ") + std::strerror(errno)};
        }
        for (int i = 0; i < n; ++i) {
            uint64_t id = events[i].data.u64;
            if (id == kListenerId) {
                accept_all();
                continue;
            }
            if (id == kSignalId) {
                signalfd_siginfo si{};
                while (::read(signal_fd_, &si, sizeof si) == sizeof si) {
                    if (si.ssi_signo == SIGHUP) {
                        log::notice("SIGHUP: reloading the configuration");
                        Status s = reload_ ? reload_(*this) : Status{};
                        if (!s.ok()) log::error("reload failed, keeping the running configuration: " + s.message);
                        else log::notice("configuration reloaded; " + std::to_string(registry_->key_count()) + " keys");
                    } else {
                        log::notice(std::string("stopping on ") + strsignal(static_cast<int>(si.ssi_signo)));
                        return {};
                    }
                }
                continue;
            }
            auto it = connections_.find(id);
            if (it == connections_.end()) continue;
            std::shared_ptr<Connection> c = it->second;
            if (events[i].events & (EPOLLERR | EPOLLHUP)) {
                close_connection(c);
                continue;
            }
            // Only the last ready connection may have a signature made on this thread: the
            // others are not kept waiting behind it. Set before on_writable too, which
            // resumes reading a connection that was paused for back-pressure.
            last_ready_event_ = i == n - 1;
            if (events[i].events & EPOLLOUT) on_writable(c);
            if ((events[i].events & EPOLLIN) && connections_.count(id)) on_readable(c);
        }
    }
}

void Server::accept_all() {
    for (;;) {
        int fd = ::accept4(listener_.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) log::warning(std::string("accept: ") + std::strerror(errno));
            return;
        }
        ucred cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
            log::warning(std::string("SO_PEERCRED failed, dropping the connection: ") + std::strerror(errno));
            ::close(fd);
            continue;
        }
        uint64_t id = next_conn_id_++;
        auto c = std::make_shared<Connection>(id, fd, Caller(cred.uid, cred.gid, cred.pid));
        connections_.emplace(id, c);
        epoll_set(epoll_fd_, EPOLL_CTL_ADD, fd, EPOLLIN, id);
        if (log::enabled(log::Level::debug)) log::debug("connection " + std::to_string(id) + " from " + who(*c));
    }
}

void Server::close_connection(const std::shared_ptr<Connection>& c) {
    {
        std::lock_guard lock(c->out_mu);
        c->closed = true;
    }
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
    ::shutdown(c->fd, SHUT_RDWR);  // the fd itself closes with the last reference
    connections_.erase(c->id);
}

void Server::on_readable(const std::shared_ptr<Connection>& c) {
    // One scratch buffer for the event loop (it is single-threaded): a connection only keeps
    // the bytes of a frame not yet complete, and a read no longer zero-fills 64 KiB.
    static thread_local std::vector<uint8_t> scratch(kReadChunk);
    size_t total = 0;
    for (;;) {
        ssize_t n = ::recv(c->fd, scratch.data(), scratch.size(), 0);
        if (n > 0) {
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
                epoll_set(epoll_fd_, EPOLL_CTL_MOD, c->fd, EPOLLOUT, c->id);
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
                        {ErrorCode::unsupported_version,
                         "protocol version " + std::to_string(h.version) + " is not supported (this agent speaks " +
                             std::to_string(ipc::kProtocolVersion) + ")"});
        } else if (h.is_response() || h.status != 0) {
            reply_error(c, h.request_id, h.base_op(), {ErrorCode::bad_request, "expected a request frame"});
        } else {
            // A frame followed by more input is never signed here: the next one waits for it.
            nothing_queued_behind_ = last_ready_event_ && c->in.size() == off + parsed.consumed;
            handle_frame(c, h.op, h.request_id, parsed.frame.body);
            nothing_queued_behind_ = false;
        }
        off += parsed.consumed;
    }
    c->in.erase(c->in.begin(), c->in.begin() + static_cast<long>(off));
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
            ssize_t n = ::send(c->fd, c->out.data() + c->out_off, c->out.size() - c->out_off,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
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
            if (!c->closed && !done) epoll_set(epoll_fd_, EPOLL_CTL_MOD, c->fd, EPOLLIN, c->id);
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
        epoll_set(epoll_fd_, EPOLL_CTL_MOD, c->fd, c->reading_paused ? EPOLLOUT : (EPOLLIN | EPOLLOUT), c->id);
    }
}

void Server::reply_error(const std::shared_ptr<Connection>& c, uint32_t id, uint8_t op, const Status& status) {
    std::vector<uint8_t> out;
    ipc::encode_error(out, id, op, status);
    send(c, std::move(out));
}

void Server::deny(const std::shared_ptr<Connection>& c, uint32_t id, uint8_t op, const std::string& key,
                  std::string_view action) {
    log::warning("access denied: " + who(*c) + " may not " + std::string(action) +
                 (key.empty() ? std::string() : " key=" + key));
    reply_error(c, id, op,
                {ErrorCode::access_denied,
                 key.empty() ? "access denied: uid " + std::to_string(c->caller.uid()) + " may not " +
                                   std::string(action) + " keys"
                             : "access to key " + key + " denied for uid " + std::to_string(c->caller.uid())});
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
    if (!token.executor->try_submit(std::move(job))) {
        c->in_flight.fetch_sub(1);
        reply_error(c, id, op, {ErrorCode::busy, "token " + token.name + " is saturated; retry later"});
        return false;
    }
    return true;
}

void Server::handle_frame(const std::shared_ptr<Connection>& c, uint8_t op_byte, uint32_t id,
                          std::span<const uint8_t> body) {
    auto op = ipc::op_from_byte(op_byte);
    if (!op) {
        reply_error(c, id, op_byte, {ErrorCode::unknown_operation, "unknown operation " + std::to_string(op_byte)});
        return;
    }
    std::vector<uint8_t> out;
    switch (*op) {
        case ipc::Op::hello: {
            auto req = ipc::decode_hello_request(body);
            if (!req.ok()) return reply_error(c, id, op_byte, req.status());
            if (req->version < ipc::kProtocolVersion)
                return reply_error(c, id, op_byte,
                                   {ErrorCode::unsupported_version,
                                    "client speaks protocol " + std::to_string(req->version) + "; this agent needs " +
                                        std::to_string(ipc::kProtocolVersion)});
            ipc::HelloResponse resp{ipc::kProtocolVersion, "keywardd " KEYWARD_VERSION, ipc::kMaxFrameSize,
                                    kMaxInFlightPerConnection, c->caller.uid()};
            ipc::encode_response(out, id, resp);
            break;
        }
        case ipc::Op::status: {
            ipc::StatusResponse resp;
            resp.server = "keywardd " KEYWARD_VERSION;
            resp.uptime_seconds = static_cast<uint64_t>(
                std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_)
                    .count());
            resp.signatures = signatures_.load();
            resp.key_count = static_cast<uint32_t>(registry_->key_count());
            for (const auto& t : registry_->tokens())
                resp.tokens.push_back({t->name, std::string(t->backend->kind()),
                                       std::string(device_health_name(t->health.load())), t->backend->description()});
            ipc::encode_response(out, id, resp);
            break;
        }
        case ipc::Op::list_keys: {
            ipc::ListKeysResponse resp;
            for (auto& k : registry_->keys())
                if (policy_->may_sign(c->caller, k.name)) resp.keys.push_back(std::move(k));
            if (!ipc::encode_response(out, id, resp))
                return reply_error(c, id, op_byte, {ErrorCode::internal, "too many keys for one answer"});
            break;
        }
        case ipc::Op::get_key: {
            auto req = ipc::decode_key_name_request(body);
            if (!req.ok()) return reply_error(c, id, op_byte, req.status());
            if (!policy_->may_sign(c->caller, req->name) && !policy_->may_manage(c->caller))
                return deny(c, id, op_byte, req->name, "read");
            auto entry = registry_->find(req->name);
            if (!entry) return reply_error(c, id, op_byte, {ErrorCode::no_such_key, "no such key: " + req->name});
            ipc::encode_response(out, id, ipc::Op::get_key, entry->info);
            break;
        }
        case ipc::Op::sign: return handle_sign(c, id, body);
        case ipc::Op::generate_key: return handle_generate(c, id, body);
        case ipc::Op::delete_key: return handle_delete(c, id, body);
        case ipc::Op::import_key: return handle_import(c, id, body);
        case ipc::Op::list_identities:
        case ipc::Op::get_identity:
        case ipc::Op::renew:
        case ipc::Op::rollback: return handle_identity_op(c, *op, id, body);
    }
    send(c, std::move(out));
}

void Server::handle_sign(const std::shared_ptr<Connection>& c, uint32_t id, std::span<const uint8_t> body) {
    const auto op = static_cast<uint8_t>(ipc::Op::sign);
    auto req = ipc::decode_sign_request(body);
    if (!req.ok()) return reply_error(c, id, op, req.status());
    auto entry = registry_->find(req->key);
    // Deny before revealing whether the key exists to someone who may not use it.
    if (!policy_->may_sign(c->caller, req->key)) return deny(c, id, op, req->key, "sign with");
    if (!entry) return reply_error(c, id, op, {ErrorCode::no_such_key, "no such key: " + req->key});
    const SchemeInfo* scheme = scheme_info(req->scheme);
    bool supported = false;
    for (auto s : entry->info.schemes) supported |= s == req->scheme;
    if (!scheme || !supported)
        return reply_error(c, id, op,
                           {ErrorCode::unsupported_scheme,
                            "key " + req->key + " cannot sign with " +
                                (scheme ? std::string(scheme->name) : "scheme " + std::to_string(int(req->scheme)))});
    if (req->digest.size() != scheme->digest_size)
        return reply_error(c, id, op,
                           {ErrorCode::invalid_argument, std::string(scheme->name) + " needs a " +
                                                             std::to_string(scheme->digest_size) + "-byte digest, got " +
                                                             std::to_string(req->digest.size())});
    // Jobs hold the token by plain pointer: a token outlives its executor's jobs, and a
    // job must never hold the last reference (its executor would then join itself).
    Token* token = entry->token.get();
    // A key whose signatures take the device less than sign_here_limit_ is signed on the
    // event loop's thread when the device has a free share and no other request is
    // waiting: the hand-off to a worker (a wake-up and a sleep on each side) costs more
    // than such a signature's share of the loop. Slower keys (RSA on a software token,
    // TPMs, smartcards) always go to the workers, so that one cannot stall every client.
    const bool may_run_here = nothing_queued_behind_ && entry->sign_micros->load(std::memory_order_relaxed) <=
                                                            static_cast<uint64_t>(sign_here_limit_.count());
    submit(c, id, op, *token, [this, c, id, token, average = entry->sign_micros, request = std::move(req).value()]() {
        const auto started = std::chrono::steady_clock::now();
        auto sig = token->backend->sign(request.key, request.scheme, request.digest);
        // Done with the device: the next signature may start (here or on a worker) while
        // this answer is encoded and written, which the client may answer with its next
        // request before this job has returned.
        Executor::release_device_share();
        std::vector<uint8_t> out;
        if (sig.ok()) {
            // Signatures only: a device that fails fast must not make its key look fast
            // (its next call may be a slow recovery, which must not run on the loop).
            note_sign_time(*average, std::chrono::steady_clock::now() - started);
            signatures_.fetch_add(1, std::memory_order_relaxed);
            ipc::encode_response(out, id, ipc::SignResponse{std::move(sig).value()});
            if (token->health.load() != DeviceHealth::present) token->health = DeviceHealth::present;
        } else {
            log::warning("sign with key " + request.key + " failed: " + sig.status().message);
            if (sig.status().code == ErrorCode::device_unavailable) token->health = token->backend->health();
            ipc::encode_error(out, id, static_cast<uint8_t>(ipc::Op::sign), sig.status());
        }
        c->in_flight.fetch_sub(1);
        send(c, std::move(out));
    }, may_run_here);
}

Token* Server::new_key_target(const std::shared_ptr<Connection>& c, uint32_t id, uint8_t op, const std::string& name,
                              const std::string& token_name, std::string_view action) {
    if (!policy_->may_manage(c->caller)) {
        deny(c, id, op, name, action);
        return nullptr;
    }
    auto token = registry_->target_for_new_key(name, token_name);
    if (!token.ok()) {
        reply_error(c, id, op, token.status());
        return nullptr;
    }
    return token.value().get();
}

void Server::answer_new_key(const std::shared_ptr<Connection>& c, uint32_t id, ipc::Op op, Token* token,
                            const std::string& name, Result<BackendKey> made) {
    std::vector<uint8_t> out;
    if (made.ok()) {
        ipc::KeyInfo info = to_key_info(made.value(), token->name);
        auto owner = token->weak_from_this().lock();
        if (owner && !registry_->add(owner, info)) log::warning("key " + name + " appeared twice; keeping the first");
        ipc::encode_response(out, id, op, info);
    } else {
        log::warning(std::string(ipc::op_name(op)) + " " + name + " failed: " + made.status().message);
        ipc::encode_error(out, id, static_cast<uint8_t>(op), made.status());
    }
    c->in_flight.fetch_sub(1);
    send(c, std::move(out));
}

void Server::handle_generate(const std::shared_ptr<Connection>& c, uint32_t id, std::span<const uint8_t> body) {
    const auto op = static_cast<uint8_t>(ipc::Op::generate_key);
    auto req = ipc::decode_generate_key_request(body);
    if (!req.ok()) return reply_error(c, id, op, req.status());
    auto type = key_type_from_name(req->type);
    if (!type)
        return reply_error(c, id, op,
                           {ErrorCode::invalid_argument,
                            "unknown key type '" + req->type + "' (ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096)"});
    Token* token = new_key_target(c, id, op, req->name, req->token, "generate");
    if (!token) return;
    log::notice("generating " + req->type + " key " + req->name + " on token " + token->name + " for " + who(*c));
    submit(c, id, op, *token, [this, c, id, token, name = req->name, kt = *type]() {
        answer_new_key(c, id, ipc::Op::generate_key, token, name, token->backend->generate(name, kt));
    });
}

void Server::handle_import(const std::shared_ptr<Connection>& c, uint32_t id, std::span<const uint8_t> body) {
    const auto op = static_cast<uint8_t>(ipc::Op::import_key);
    auto req = ipc::decode_import_key_request(body);
    if (!req.ok()) return reply_error(c, id, op, req.status());
    Token* token = new_key_target(c, id, op, req->name, req->token, "import");
    if (!token) return;
    log::notice("importing key " + req->name + " into token " + token->name + " for " + who(*c));
    submit(c, id, op, *token, [this, c, id, token, request = std::move(req).value()]() {
        answer_new_key(c, id, ipc::Op::import_key, token, request.name,
                       token->backend->import_key(request.name, request.blob));
    });
}

void Server::handle_identity_op(const std::shared_ptr<Connection>& c, ipc::Op op, uint32_t id,
                                std::span<const uint8_t> body) {
    const auto op_byte = static_cast<uint8_t>(op);
    std::string name;
    uint8_t flags = 0;
    if (op == ipc::Op::renew) {
        auto req = ipc::decode_renew_request(body);
        if (!req.ok()) return reply_error(c, id, op_byte, req.status());
        name = req->name;
        flags = req->flags;
    } else if (op != ipc::Op::list_identities) {
        auto req = ipc::decode_key_name_request(body);
        if (!req.ok()) return reply_error(c, id, op_byte, req.status());
        name = req->name;
    }
    // Identity views name keys, subjects and files; changing them is management.
    if (!policy_->may_manage(c->caller)) return deny(c, id, op_byte, {}, std::string(ipc::op_name(op)) + " on");
    if (!lifecycle_)
        return reply_error(c, id, op_byte,
                           {ErrorCode::invalid_argument, "no identities are configured (see docs/renewal.md)"});
    if (c->in_flight.load() >= kMaxInFlightPerConnection)
        return reply_error(c, id, op_byte, {ErrorCode::busy, "too many requests in flight on one connection"});
    c->in_flight.fetch_add(1);
    bool queued = lifecycle_->submit([this, c, id, op, name, flags](lifecycle::Lifecycle& l) {
        Result<std::string> view = Status{ErrorCode::internal, "unhandled"};
        try {
            switch (op) {
                case ipc::Op::list_identities: view = l.list_json(); break;
                case ipc::Op::get_identity: view = l.show_json(name); break;
                case ipc::Op::renew:
                    view = l.renew({name, (flags & ipc::kRenewNow) != 0, (flags & ipc::kRenewRekey) != 0});
                    break;
                default: view = l.rollback(name); break;
            }
        } catch (const std::exception& e) {
            view = Status{ErrorCode::internal, std::string(ipc::op_name(op)) + " failed: " + e.what()};
        }
        std::vector<uint8_t> out;
        if (!view.ok() || !ipc::encode_response(out, id, op, ipc::DocumentResponse{view.value()})) {
            out.clear();
            ipc::encode_error(out, id, static_cast<uint8_t>(op),
                              view.ok() ? Status{ErrorCode::internal, "identity view too large"} : view.status());
        }
        c->in_flight.fetch_sub(1);
        send(c, std::move(out));
    });
    if (!queued) {
        c->in_flight.fetch_sub(1);
        reply_error(c, id, op_byte, {ErrorCode::busy, "the certificate lifecycle is saturated; retry later"});
    }
}

void Server::handle_delete(const std::shared_ptr<Connection>& c, uint32_t id, std::span<const uint8_t> body) {
    const auto op = static_cast<uint8_t>(ipc::Op::delete_key);
    auto req = ipc::decode_key_name_request(body);
    if (!req.ok()) return reply_error(c, id, op, req.status());
    if (!policy_->may_manage(c->caller)) return deny(c, id, op, req->name, "delete");
    auto entry = registry_->find(req->name);
    if (!entry) return reply_error(c, id, op, {ErrorCode::no_such_key, "no such key: " + req->name});
    log::notice("deleting key " + req->name + " on token " + entry->token->name + " for " + who(*c));
    Token* token = entry->token.get();
    submit(c, id, op, *token, [this, c, id, token, name = req->name]() {
        Status s = token->backend->destroy(name);
        std::vector<uint8_t> out;
        if (s.ok()) {
            registry_->remove(name);
            ipc::encode_empty_response(out, id, ipc::Op::delete_key);
        } else {
            ipc::encode_error(out, id, static_cast<uint8_t>(ipc::Op::delete_key), s);
        }
        c->in_flight.fetch_sub(1);
        send(c, std::move(out));
    });
}

}  // namespace keyward
