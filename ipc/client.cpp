#include "ipc/client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <thread>
#include <unordered_map>
#include <vector>

#include "ipc/codec.hpp"

namespace keyward {

std::string resolve_socket_path(std::string_view explicit_path) {
    if (!explicit_path.empty()) return std::string(explicit_path);
    if (const char* env = ::secure_getenv("KEYWARD_SOCKET"); env && *env) return env;  // not in setuid programs
    return std::string(kDefaultSocketPath);
}

std::chrono::milliseconds resolve_timeout(std::string_view explicit_seconds, std::chrono::milliseconds fallback) {
    std::string text(explicit_seconds);
    if (text.empty()) {
        const char* env = ::secure_getenv("KEYWARD_TIMEOUT");
        if (env != nullptr) text = env;
    }
    if (text.empty()) return fallback;
    char* end = nullptr;
    const double seconds = std::strtod(text.c_str(), &end);
    if (end == text.c_str() || *end != '\0' || !(seconds > 0) || seconds > 86400) return fallback;
    return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

namespace {

using Clock = std::chrono::steady_clock;

// The longest a reader waits in one read before it looks at the deadline and its slot again.
constexpr int kReadSliceMs = 200;

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

std::string errno_text(int err) { return std::strerror(err); }

// Fork detection without a getpid() system call on every request: a page the kernel
// hands a forked child zero-filled (MADV_WIPEONFORK, Linux 4.14). While it still holds
// its mark, this process has not forked since it was set, and getpid() cannot have changed.
// Where the kernel lacks it, every check asks getpid() as before.
class ForkWitness {
public:
    ForkWitness() {
        void* p = ::mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return;
        if (::madvise(p, kPage, MADV_WIPEONFORK) != 0) {
            ::munmap(p, kPage);
            return;
        }
        mark_ = static_cast<std::atomic<uint32_t>*>(p);
        mark_->store(1, std::memory_order_relaxed);
    }
    ~ForkWitness() {
        if (mark_ != nullptr) ::munmap(mark_, kPage);
    }
    ForkWitness(const ForkWitness&) = delete;
    ForkWitness& operator=(const ForkWitness&) = delete;
    // True when this process may have forked since the mark was last set (then re-marks).
    bool maybe_forked() noexcept {
        if (mark_ == nullptr) return true;
        if (mark_->load(std::memory_order_relaxed) == 1) return false;
        mark_->store(1, std::memory_order_relaxed);
        return true;
    }

private:
    static constexpr size_t kPage = 4096;
    std::atomic<uint32_t>* mark_ = nullptr;
};

// An answer (or the transport failure that replaced it) for one request id.
struct Slot {
    bool done = false;
    Status transport;  // set when the connection failed before the answer came
    uint16_t status = 0;
    std::vector<uint8_t> body;
};

// A caller waiting for its answer: woken alone when the answer is in, or when it is its
// turn to read (so an answer wakes one thread, not every thread waiting on the connection).
struct Waiter {
    Slot* slot;
    std::condition_variable* wake;
};

constexpr size_t kMaxLanes = 8;

// One connection to the agent with the requests in flight on it. A Client has one lane per
// CPU (at most kMaxLanes) and each calling thread keeps to one lane: threads on different
// lanes never share a lock or a socket, and the agent spreads the connections over its
// event loops, so their signatures are made in parallel. Threads on one lane pipeline.
struct Lane {
    const ClientOptions& options;
    const std::string& path;

    std::mutex mu;               // guards everything below except the read buffer
    std::condition_variable cv;  // capacity freed or the connection dropped (for callers not yet in `pending`)
    std::mutex write_mu;         // one writer at a time on the socket
    int fd = -1;
    bool blocking_reads = false;  // fd blocks on recv, with a receive timeout of kReadSlice
    uint64_t generation = 0;      // bumped on every new connection
    ipc::HelloResponse hello;
    uint32_t next_id = 1;
    bool reader_active = false;
    int capacity_waiters = 0;  // callers waiting on cv for a free request slot
    std::unordered_map<uint32_t, Waiter> pending;

    std::vector<uint8_t> rbuf;  // owned by whichever thread is the reader
    size_t rbuf_start = 0;

    // Who this process was when the connection was opened: the agent decided then, from the
    // kernel's SO_PEERCRED/SO_PEERGROUPS, what the connection may do. A process that changed
    // its ids or groups since (a daemon dropping privileges) gets a new connection, so that
    // it never keeps rights it gave up.
    struct Credentials {
        uid_t euid = 0;
        gid_t egid = 0;
        std::vector<gid_t> groups;
        bool operator==(const Credentials&) const = default;
    };
    Credentials connected_as;
    Clock::time_point last_used{};

    static Credentials current_credentials() {
        Credentials c{::geteuid(), ::getegid(), {}};
        int n = ::getgroups(0, nullptr);
        if (n > 0) {
            c.groups.resize(static_cast<size_t>(n));
            n = ::getgroups(n, c.groups.data());
            c.groups.resize(static_cast<size_t>(std::max(n, 0)));
        }
        return c;
    }

    // The check before every request: three cheap system calls and, for the usual handful of
    // groups, no allocation (current_credentials() is for connecting).
    bool credentials_unchanged_locked() const {
        if (::geteuid() != connected_as.euid || ::getegid() != connected_as.egid) return false;
        gid_t groups[64];
        const int n = ::getgroups(64, groups);
        if (n < 0) return current_credentials() == connected_as;  // more than 64 groups
        return std::equal(groups, groups + n, connected_as.groups.begin(), connected_as.groups.end());
    }

    // Called with mu held, before a request on an open connection: false when it must be
    // replaced — the process's credentials changed, or the agent closed it while it sat
    // idle (its idle timeout), which a request would otherwise only find out by failing.
    bool connection_still_good_locked(Clock::time_point now) {
        if (!credentials_unchanged_locked()) return false;
        if (!pending.empty() || now - last_used < std::chrono::seconds(1)) return true;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 0) <= 0) return true;
        char byte;
        return ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) != 0;
    }

    Lane(const ClientOptions& o, const std::string& p) : options(o), path(p) {}
    ~Lane() {
        if (fd >= 0) ::close(fd);
    }
    Lane(const Lane&) = delete;
    Lane& operator=(const Lane&) = delete;

    // In a forked child (Client::Impl::after_fork_check): drops the inherited descriptor
    // (close, never shutdown, so the parent's connection is untouched) and resets the
    // locks, which another parent thread may have held at the moment of fork.
    void forget_after_fork() {
        new (&mu) std::mutex;
        new (&write_mu) std::mutex;
        new (&cv) std::condition_variable;
        if (fd >= 0) ::close(fd);
        fd = -1;
        pending.clear();
        reader_active = false;
        rbuf.clear();
        rbuf_start = 0;
    }

    // Fails every waiter and forgets the connection. Called with mu held.
    void drop_connection_locked(const Status& why) {
        if (fd >= 0) ::close(fd);
        fd = -1;
        for (auto& [id, w] : pending) {
            w.slot->done = true;
            w.slot->transport = why;
            w.wake->notify_one();
        }
        pending.clear();
        rbuf.clear();
        rbuf_start = 0;
        cv.notify_all();
    }

    Status write_all(int sock, const std::vector<uint8_t>& bytes, Clock::time_point deadline) {
        size_t off = 0;
        while (off < bytes.size()) {
            ssize_t n = ::send(sock, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                off += static_cast<size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                pollfd p{sock, POLLOUT, 0};
                int r = ::poll(&p, 1, remaining_ms(deadline));
                if (r == 0) return {ErrorCode::timeout, "timed out sending to the agent at " + path};
                continue;
            }
            return {ErrorCode::connection_lost,
                    "lost the connection to the agent at " + path + ": " + errno_text(errno)};
        }
        return {};
    }

    // Reads whatever is available into rbuf (waiting up to `wait_ms`). Returns false with
    // `why` set when the connection is gone; true with nothing read on a timeout. A wait of
    // exactly kReadSlice on a connection set up for it is one blocking recv (its receive
    // timeout is kReadSlice): one system call per answer instead of poll + recv.
    bool read_some(int sock, int wait_ms, Status& why, bool sock_blocks = false) {
        const bool blocking = sock_blocks && wait_ms == kReadSliceMs;
        if (!blocking) {
            pollfd p{sock, POLLIN, 0};
            int r = ::poll(&p, 1, wait_ms);
            if (r < 0 && errno != EINTR) {
                why = {ErrorCode::connection_lost, "poll on the agent connection failed: " + errno_text(errno)};
                return false;
            }
            if (r <= 0) return true;
        }
        if (rbuf_start > 0 && rbuf_start == rbuf.size()) {
            rbuf.clear();
            rbuf_start = 0;
        }
        // A stack chunk, appended: resizing rbuf by 64 KiB zero-filled 64 KiB on every answer.
        uint8_t chunk[16384];
        ssize_t n = ::recv(sock, chunk, sizeof chunk, blocking ? 0 : MSG_DONTWAIT);
        if (n > 0) {
            rbuf.insert(rbuf.end(), chunk, chunk + n);
            return true;
        }
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        why = {ErrorCode::connection_lost,
               n == 0 ? "the agent at " + path + " closed the connection"
                      : "lost the connection to the agent at " + path + ": " + errno_text(errno)};
        return false;
    }

    // Connects and says HELLO. Called with mu held and no connection.
    Status connect_locked(Clock::time_point deadline) {
        // Taken before connect(), whose moment fixes the SO_PEERCRED the agent reads: an id
        // change in between then shows up as a change at the next request (a reconnect),
        // never as rights this process kept after giving them up.
        Credentials as = current_credentials();
        int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (sock < 0) return {ErrorCode::agent_unreachable, "cannot create a socket: " + errno_text(errno)};
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (path.size() >= sizeof addr.sun_path) {
            ::close(sock);
            return {ErrorCode::agent_unreachable, "socket path too long: " + path};
        }
        std::memcpy(addr.sun_path, path.data(), path.size());
        int r;
        do {
            r = ::connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        } while (r < 0 && errno == EINTR);
        if (r < 0 && errno == EAGAIN) {  // listen backlog full: wait for room, bounded by the deadline
            while (r < 0 && errno == EAGAIN && remaining_ms(deadline) > 0) {
                ::usleep(1000);
                r = ::connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
            }
        }
        if (r < 0) {
            int err = errno;
            ::close(sock);
            return {ErrorCode::agent_unreachable, "agent not reachable at " + path + ": " + errno_text(err)};
        }

        std::vector<uint8_t> out;
        ipc::HelloRequest hello_req{ipc::kProtocolVersion, options.client_name};
        ipc::encode_request(out, 0, hello_req);
        Status s = write_all(sock, out, deadline);
        std::vector<uint8_t> saved_buf;
        std::swap(saved_buf, rbuf);
        rbuf_start = 0;
        while (s.ok()) {
            auto parsed = ipc::parse_frame(rbuf);
            if (parsed.state == ipc::ParseState::invalid) {
                s = {ErrorCode::protocol_error, "the agent's HELLO answer is malformed: " + parsed.error.message};
                break;
            }
            if (parsed.state == ipc::ParseState::complete) {
                const auto& h = parsed.frame.header;
                if (h.status != 0) {
                    s = {static_cast<ErrorCode>(h.status),
                         "the agent refused HELLO: " + ipc::decode_error_message(parsed.frame.body)};
                } else if (h.request_id != 0 || h.base_op() != static_cast<uint8_t>(ipc::Op::hello)) {
                    s = {ErrorCode::protocol_error, "the agent answered HELLO with an unexpected frame"};
                } else if (auto hr = ipc::decode_hello_response(parsed.frame.body); !hr.ok()) {
                    s = {ErrorCode::protocol_error, hr.status().message};
                } else if (hr->version != ipc::kProtocolVersion) {
                    s = {ErrorCode::unsupported_version,
                         "the agent speaks protocol version " + std::to_string(hr->version)};
                } else {
                    hello = std::move(hr).value();
                }
                break;
            }
            int wait = remaining_ms(deadline);
            if (wait == 0) {
                s = {ErrorCode::timeout, "the agent at " + path + " did not answer HELLO in time"};
                break;
            }
            Status why;
            if (!read_some(sock, wait, why)) s = why;
        }
        rbuf = std::move(saved_buf);
        rbuf.clear();
        rbuf_start = 0;
        if (!s.ok()) {
            ::close(sock);
            return s;
        }
        // From now on the descriptor blocks (sends still pass MSG_DONTWAIT) and a read waits
        // at most kReadSlice, so the reader's wait for an answer is a single recv.
        const timeval slice{0, kReadSliceMs * 1000};
        const int flags = ::fcntl(sock, F_GETFL);
        blocking_reads = flags >= 0 && ::setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &slice, sizeof slice) == 0 &&
                         ::fcntl(sock, F_SETFL, flags & ~O_NONBLOCK) == 0;
        fd = sock;
        ++generation;
        connected_as = std::move(as);
        return {};
    }

    // Hands complete frames in rbuf to their slots. Called with mu held by the reader.
    Status dispatch_locked() {
        for (;;) {
            std::span<const uint8_t> view(rbuf.data() + rbuf_start, rbuf.size() - rbuf_start);
            auto parsed = ipc::parse_frame(view);
            if (parsed.state == ipc::ParseState::incomplete) break;
            if (parsed.state == ipc::ParseState::invalid)
                return {ErrorCode::protocol_error, "the agent sent a malformed frame: " + parsed.error.message};
            const auto& h = parsed.frame.header;
            auto it = pending.find(h.request_id);
            if (it != pending.end()) {
                Slot* slot = it->second.slot;
                slot->status = h.status;
                slot->body.assign(parsed.frame.body.begin(), parsed.frame.body.end());
                slot->done = true;
                it->second.wake->notify_one();
                pending.erase(it);
            }
            // An answer nobody waits for (its caller timed out) is dropped.
            rbuf_start += parsed.consumed;
        }
        if (rbuf_start == rbuf.size()) {
            rbuf.clear();
            rbuf_start = 0;
        } else if (rbuf_start > 65536) {
            rbuf.erase(rbuf.begin(), rbuf.begin() + static_cast<long>(rbuf_start));
            rbuf_start = 0;
        }
        if (capacity_waiters > 0) cv.notify_all();
        return {};
    }

    // A reader that got its own answer steps down: some other waiter takes over reading.
    // Called with mu held.
    void hand_off_reading_locked() {
        if (!reader_active && !pending.empty()) pending.begin()->second.wake->notify_one();
    }

    template <typename Encode>
    Result<Slot> call_once(Encode& encode) {
        const auto now = Clock::now();
        const auto deadline = now + options.timeout;
        Slot slot;
        std::unique_lock lock(mu);
        if (fd >= 0 && !connection_still_good_locked(now))
            drop_connection_locked({ErrorCode::connection_lost, "the connection to the agent was renewed"});
        last_used = now;
        if (fd < 0) {
            Status s = connect_locked(std::min(deadline, Clock::now() + options.connect_timeout));
            if (!s.ok()) return s;
        }
        while (hello.max_in_flight > 0 && pending.size() >= hello.max_in_flight) {
            ++capacity_waiters;
            const bool timed_out = cv.wait_until(lock, deadline) == std::cv_status::timeout;
            --capacity_waiters;
            if (timed_out) return Status{ErrorCode::timeout, "too many requests in flight to the agent"};
            if (fd < 0) return Status{ErrorCode::connection_lost, "lost the connection to the agent at " + path};
        }
        uint32_t id = next_id++;
        if (next_id == 0) next_id = 1;  // 0 is HELLO's
        std::vector<uint8_t> out;
        if (!encode(out, id)) return Status{ErrorCode::invalid_argument, "request too large for one frame"};
        std::condition_variable wake;
        pending.emplace(id, Waiter{&slot, &wake});
        const int sock = fd;
        const bool sock_blocks = blocking_reads;
        const uint64_t gen = generation;
        lock.unlock();

        Status sent;
        {
            std::lock_guard wl(write_mu);
            sent = write_all(sock, out, deadline);
        }
        lock.lock();
        if (!sent.ok()) {
            pending.erase(id);
            if (generation == gen && fd == sock) drop_connection_locked(sent);
            return sent;
        }

        while (!slot.done) {
            if (!reader_active && fd == sock) {
                reader_active = true;
                lock.unlock();
                Status why;
                int wait = std::min(remaining_ms(deadline), kReadSliceMs);
                bool alive = read_some(sock, wait, why, sock_blocks);
                lock.lock();
                reader_active = false;
                if (generation != gen || fd != sock) continue;  // someone else already dropped this connection
                if (alive) why = dispatch_locked();
                if (!alive || !why.ok()) {
                    drop_connection_locked(why);
                    continue;
                }
            } else if (!slot.done) {
                wake.wait_until(lock, std::min(deadline, Clock::now() + std::chrono::milliseconds(kReadSliceMs)));
            }
            if (!slot.done && Clock::now() >= deadline) {
                pending.erase(id);
                hand_off_reading_locked();
                return Status{ErrorCode::timeout, "the agent at " + path + " did not answer in time"};
            }
        }
        hand_off_reading_locked();
        if (!slot.transport.ok()) return slot.transport;
        return slot;
    }
};

// Each thread's lane number: threads take consecutive numbers as they first call, so the
// threads of a process spread evenly over a Client's lanes.
std::atomic<uint32_t> g_next_thread_number{0};
thread_local const uint32_t t_thread_number = g_next_thread_number.fetch_add(1, std::memory_order_relaxed);

// The explicit count, else $KEYWARD_CONNECTIONS (for programs that cannot pass options: the
// provider, the PKCS#11 module), else one per CPU.
size_t lane_count_for(size_t asked) {
    if (asked == 0) {
        if (const char* env = ::secure_getenv("KEYWARD_CONNECTIONS"); env && *env) {
            char* end = nullptr;
            const unsigned long n = std::strtoul(env, &end, 10);
            if (*end == '\0') asked = n;
        }
    }
    if (asked == 0) asked = std::thread::hardware_concurrency();
    return std::clamp<size_t>(asked, 1, kMaxLanes);
}

}  // namespace

struct Client::Impl {
    ClientOptions options;
    std::string path;

    std::atomic<pid_t> owner_pid{getpid()};
    ForkWitness fork_witness;
    const size_t lane_count;
    std::unique_ptr<std::unique_ptr<Lane>[]> lanes;

    explicit Impl(ClientOptions o)
            : options(std::move(o)),
              path(resolve_socket_path(options.socket_path)),
              lane_count(lane_count_for(options.connections)),
              lanes(std::make_unique<std::unique_ptr<Lane>[]>(lane_count)) {
        for (size_t i = 0; i < lane_count; ++i) lanes[i] = std::make_unique<Lane>(options, path);
    }

    Lane& my_lane() { return *lanes[t_thread_number % lane_count]; }

    // The child of a fork() must not share the parent's streams.
    void after_fork_check() {
        if (!fork_witness.maybe_forked()) return;
        pid_t now = getpid();
        pid_t was = owner_pid.load(std::memory_order_relaxed);
        if (now == was) return;
        if (!owner_pid.compare_exchange_strong(was, now)) return;
        for (size_t i = 0; i < lane_count; ++i) lanes[i]->forget_after_fork();
    }

    // One request/answer exchange on the calling thread's lane. `encode` writes the request
    // frame for the given id.
    template <typename Encode>
    Result<Slot> call(Encode&& encode, bool retry_on_lost) {
        after_fork_check();
        Lane& lane = my_lane();
        for (int attempt = 0;; ++attempt) {
            Result<Slot> r = lane.call_once(encode);
            if (r.ok() || !retry_on_lost || attempt > 0) return r;
            if (r.status().code != ErrorCode::connection_lost) return r;
        }
    }

    // The request shapes: an operation without a body (STATUS, LIST_*), one that names a
    // key or identity (GET_KEY, DELETE_KEY, GET_IDENTITY, ROLLBACK), and a message that
    // carries its own operation (SIGN, GENERATE_KEY, IMPORT_KEY, RENEW).
    Result<Slot> call_op(ipc::Op op, bool retry_on_lost) {
        return call([op](auto& out, uint32_t id) { return ipc::encode_request(out, id, op); }, retry_on_lost);
    }
    Result<Slot> call_named(ipc::Op op, std::string_view name, bool retry_on_lost) {
        const ipc::KeyNameRequest req{std::string(name)};
        return call([&](auto& out, uint32_t id) { return ipc::encode_request(out, id, op, req); }, retry_on_lost);
    }
    template <typename Request>
    Result<Slot> call_with(const Request& req, bool retry_on_lost) {
        return call([&](auto& out, uint32_t id) { return ipc::encode_request(out, id, req); }, retry_on_lost);
    }

    // The JSON view carried by an identity operation's answer.
    Result<std::string> document(Result<Slot>&& r) {
        auto doc = answer<ipc::DocumentResponse>(std::move(r), ipc::decode_document_response);
        if (!doc.ok()) return doc.status();
        return std::move(doc.value().json);
    }

    // Turns an answer into the caller's value, or the agent's error into a Status.
    template <typename T, typename Decode>
    Result<T> answer(Result<Slot>&& r, Decode&& decode) {
        if (!r.ok()) return r.status();
        Slot& slot = r.value();
        if (slot.status != 0) {
            std::string msg = ipc::decode_error_message(slot.body);
            if (msg.empty()) msg = std::string(error_code_name(static_cast<ErrorCode>(slot.status)));
            return Status{static_cast<ErrorCode>(slot.status), std::move(msg)};
        }
        auto decoded = decode(slot.body);
        if (!decoded.ok())
            return Status{ErrorCode::protocol_error, "unexpected answer from the agent: " + decoded.status().message};
        return std::move(decoded).value();
    }
};

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Client::~Client() = default;

const std::string& Client::socket_path() const noexcept { return impl_->path; }

Status Client::connect() {
    impl_->after_fork_check();
    Lane& lane = impl_->my_lane();
    std::lock_guard lock(lane.mu);
    if (lane.fd >= 0) return {};
    return lane.connect_locked(Clock::now() + std::min(impl_->options.timeout, impl_->options.connect_timeout));
}

Result<ipc::HelloResponse> Client::hello() {
    Status s = connect();
    if (!s.ok()) return s;
    Lane& lane = impl_->my_lane();
    std::lock_guard lock(lane.mu);
    return lane.hello;
}

Result<ipc::StatusResponse> Client::status() {
    return impl_->answer<ipc::StatusResponse>(impl_->call_op(ipc::Op::status, true), ipc::decode_status_response);
}

Result<std::vector<ipc::KeyInfo>> Client::list_keys() {
    std::vector<ipc::KeyInfo> keys;
    std::string after;
    for (;;) {
        auto page =
            impl_->answer<ipc::ListKeysResponse>(after.empty() ? impl_->call_op(ipc::Op::list_keys, true)
                                                               : impl_->call_named(ipc::Op::list_keys, after, true),
                                                 ipc::decode_list_keys_response);
        if (!page.ok()) return page.status();
        for (auto& k : page.value().keys) keys.push_back(std::move(k));
        if (page.value().next.empty()) return keys;
        if (page.value().next <= after)  // names only grow from page to page
            return Status{ErrorCode::protocol_error, "the agent's key list does not advance"};
        after = std::move(page.value().next);
    }
}

Result<ipc::KeyInfo> Client::get_key(std::string_view name) {
    return impl_->answer<ipc::KeyInfo>(impl_->call_named(ipc::Op::get_key, name, true), ipc::decode_key_response);
}

Result<std::vector<uint8_t>> Client::sign(std::string_view key, ipc::Scheme scheme, std::span<const uint8_t> digest) {
    const ipc::SignRequest req{std::string(key), scheme, {digest.begin(), digest.end()}};
    auto answer = impl_->answer<ipc::SignResponse>(impl_->call_with(req, true), ipc::decode_sign_response);
    if (!answer.ok()) return answer.status();
    return std::move(answer.value().signature);
}

Result<ipc::KeyInfo> Client::generate_key(const ipc::GenerateKeyRequest& request) {
    return impl_->answer<ipc::KeyInfo>(impl_->call_with(request, false), ipc::decode_key_response);
}

Result<ipc::KeyInfo> Client::import_key(const ipc::ImportKeyRequest& request) {
    return impl_->answer<ipc::KeyInfo>(impl_->call_with(request, false), ipc::decode_key_response);
}

Status Client::delete_key(std::string_view name) {
    const auto no_body = [](std::span<const uint8_t>) { return Result<bool>(true); };
    return impl_->answer<bool>(impl_->call_named(ipc::Op::delete_key, name, false), no_body).status();
}

Result<std::string> Client::list_identities() {
    return impl_->document(impl_->call_op(ipc::Op::list_identities, true));
}

Result<std::string> Client::doctor() { return impl_->document(impl_->call_op(ipc::Op::doctor, true)); }

Result<std::string> Client::get_identity(std::string_view name) {
    return impl_->document(impl_->call_named(ipc::Op::get_identity, name, true));
}

Result<std::string> Client::renew(std::string_view name, uint8_t flags) {
    return impl_->document(impl_->call_with(ipc::RenewRequest{std::string(name), flags}, false));
}

Result<std::string> Client::rollback(std::string_view name) {
    return impl_->document(impl_->call_named(ipc::Op::rollback, name, false));
}

Result<std::string> Client::revoke(const ipc::RevokeRequest& request) {
    return impl_->document(impl_->call_with(request, false));
}

}  // namespace keyward
