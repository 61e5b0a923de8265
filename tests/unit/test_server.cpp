// The agent's event loop and executors, over fake backends: pipelining with answers out
// of order, hostile frames on a live connection, and the client library against it.
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "agent/server.hpp"
#include "fake_backend.hpp"
#include "ipc/client.hpp"
#include "ipc/codec.hpp"

using namespace keyward;
using namespace keyward::agent;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<Token> fake_token(const std::string& name, std::chrono::milliseconds delay, const std::string& key,
                                  size_t shares = 1) {
    auto t = std::make_shared<Token>();
    t->name = name;
    t->backend = std::make_unique<testing::FakeBackend>(delay);
    REQUIRE(t->backend->generate(key, KeyType::ec_p256).ok());
    t->executor = std::make_unique<Executor>(name, shares, 64);
    return t;
}

// Runs a Server on a temporary socket for the duration of a test.
class RunningAgent {
public:
    // `fast_shares`: concurrent signatures the fast token allows; `loops`: event loops (0: one per CPU).
    explicit RunningAgent(mode_t socket_mode = 0600, ServerLimits limits = {}, size_t fast_shares = 1,
                          size_t loops = 0) {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGTERM);
        sigaddset(&s, SIGINT);
        sigaddset(&s, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &s, nullptr);
        dir_ = std::filesystem::temp_directory_path() / ("keyward-unit-" + std::to_string(getpid()));
        std::filesystem::create_directories(dir_);
        path_ = (dir_ / "agent.sock").string();
        auto listener = Listener::open(path_, socket_mode, std::nullopt);
        REQUIRE(listener.ok());
        registry_ = std::make_shared<KeyRegistry>();
        registry_->reset({fake_token("slow", 400ms, "slowkey"), fake_token("fast", 0ms, "fastkey", fast_shares)},
                         "fast");
        AgentConfig config;
        server_ = std::make_unique<Server>(std::move(listener).value(), registry_,
                                           std::make_shared<AccessPolicy>(config, getuid()), nullptr);
        // Generous, so that a preempted or sanitizer-slowed fake signature still counts as
        // fast; the slow token's 400 ms are far above it.
        server_->set_sign_here_limit(20ms);
        server_->set_limits(limits);
        server_->set_event_loops(loops);
        thread_ = std::thread([this] { result_ = server_->run(); });
    }
    ~RunningAgent() {
        ::kill(getpid(), SIGTERM);
        thread_.join();
        registry_->reset({}, {});
        server_.reset();
        std::filesystem::remove_all(dir_);
    }
    const std::string& path() const { return path_; }
    bool on_event_loop(std::thread::id id) const {
        auto loops = server_->loop_threads();
        return std::find(loops.begin(), loops.end(), id) != loops.end();
    }
    testing::FakeBackend& backend(const std::string& token) {
        return dynamic_cast<testing::FakeBackend&>(*registry_->token(token)->backend);
    }

    int raw_connect() const {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        timeval tv{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        return fd;
    }

private:
    std::filesystem::path dir_;
    std::string path_;
    std::shared_ptr<KeyRegistry> registry_;
    std::unique_ptr<Server> server_;
    std::thread thread_;
    Status result_;
};

std::map<int, std::vector<uint8_t>> g_unread;  // per raw connection: bytes read past a frame

void close_raw(int fd) {
    g_unread.erase(fd);
    ::close(fd);
}

void send_all(int fd, const std::vector<uint8_t>& bytes) {
    REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
}

// Reads one whole frame; returns its header and body. Bytes of the next frames that came
// with it stay buffered for the next call.
std::pair<ipc::FrameHeader, std::vector<uint8_t>> read_frame(int fd) {
    std::vector<uint8_t>& buf = g_unread[fd];
    for (;;) {
        auto r = ipc::parse_frame(buf);
        if (r.state == ipc::ParseState::complete) {
            std::pair<ipc::FrameHeader, std::vector<uint8_t>> frame{
                r.frame.header, std::vector<uint8_t>(r.frame.body.begin(), r.frame.body.end())};
            buf.erase(buf.begin(), buf.begin() + static_cast<long>(r.consumed));
            return frame;
        }
        REQUIRE(r.state == ipc::ParseState::incomplete);
        uint8_t chunk[4096];
        ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        REQUIRE(n > 0);
        buf.insert(buf.end(), chunk, chunk + n);
    }
}

}  // namespace

TEST_CASE("agent: answers come back out of order when a device is slow", "[server]") {
    RunningAgent agent;
    int fd = agent.raw_connect();
    std::vector<uint8_t> out;
    ipc::encode_request(out, 0, ipc::HelloRequest{1, "unit"});
    ipc::encode_request(out, 1,
                        ipc::SignRequest{"slowkey", ipc::Scheme::ecdsa_secp256r1_sha256, std::vector<uint8_t>(32, 1)});
    ipc::encode_request(out, 2,
                        ipc::SignRequest{"fastkey", ipc::Scheme::ecdsa_secp256r1_sha256, std::vector<uint8_t>(32, 2)});
    send_all(fd, out);
    CHECK(read_frame(fd).first.request_id == 0);
    auto first = read_frame(fd);
    auto second = read_frame(fd);
    CHECK(first.first.request_id == 2);  // the fast token's answer overtakes the slow one
    CHECK(second.first.request_id == 1);
    CHECK(first.first.status == 0);
    CHECK(second.first.status == 0);
    close_raw(fd);
}

TEST_CASE("agent: a fast key is signed on an event loop's thread, a slow one only by workers", "[server]") {
    RunningAgent agent;
    Client client(ClientOptions{agent.path()});
    const std::vector<uint8_t> digest(32, 7);
    for (int i = 0; i < 20; ++i) REQUIRE(client.sign("fastkey", ipc::Scheme::ecdsa_secp256r1_sha256, digest).ok());
    for (int i = 0; i < 2; ++i) REQUIRE(client.sign("slowkey", ipc::Scheme::ecdsa_secp256r1_sha256, digest).ok());
    auto fast = agent.backend("fast").sign_threads();
    auto slow = agent.backend("slow").sign_threads();
    REQUIRE(fast.size() == 20);
    REQUIRE(slow.size() == 2);
    // The first signature of a key is timed on a worker; once the key is known to be fast,
    // one request at a time is answered without a hand-off.
    const auto on_loop = [&](std::thread::id id) { return agent.on_event_loop(id); };
    CHECK(!on_loop(fast.front()));
    CHECK(std::count_if(fast.begin() + 1, fast.end(), on_loop) == 19);
    // 400 ms a signature: never on a loop, which would stall its other clients.
    CHECK(std::count_if(slow.begin(), slow.end(), on_loop) == 0);
}

TEST_CASE("agent: hostile frames get errors, the connection and the agent survive", "[server]") {
    RunningAgent agent;
    int fd = agent.raw_connect();
    std::vector<uint8_t> out;
    SECTION("unknown operation") {
        ipc::FrameWriter w(out, {1, 0x42, 0, 9});
        w.finish();
        send_all(fd, out);
        auto [h, body] = read_frame(fd);
        CHECK(h.request_id == 9);
        CHECK(h.status == static_cast<uint16_t>(ErrorCode::unknown_operation));
    }
    SECTION("wrong version") {
        ipc::FrameWriter w(out, {7, 2, 0, 5});
        w.finish();
        send_all(fd, out);
        CHECK(read_frame(fd).first.status == static_cast<uint16_t>(ErrorCode::unsupported_version));
    }
    SECTION("malformed body") {
        ipc::FrameWriter w(out, {1, 5, 0, 6});
        w.put_string(ipc::Tag::name, "fastkey");  // no scheme, no digest
        w.finish();
        send_all(fd, out);
        CHECK(read_frame(fd).first.status == static_cast<uint16_t>(ErrorCode::bad_request));
    }
    SECTION("wrong digest length") {
        ipc::encode_request(out, 3, ipc::SignRequest{"fastkey", ipc::Scheme::ecdsa_secp256r1_sha256, {1, 2, 3}});
        send_all(fd, out);
        CHECK(read_frame(fd).first.status == static_cast<uint16_t>(ErrorCode::invalid_argument));
    }
    SECTION("an oversized length closes that connection only") {
        send_all(fd, {0x7f, 0xff, 0xff, 0xff});
        auto [h, body] = read_frame(fd);
        CHECK(h.status == static_cast<uint16_t>(ErrorCode::bad_request));
        uint8_t b;
        CHECK(::recv(fd, &b, 1, 0) == 0);  // then EOF
    }
    close_raw(fd);
    // Whatever happened above, a fresh client still gets signatures.
    Client client({agent.path(), 5s, "unit"});
    auto sig = client.sign("fastkey", ipc::Scheme::ecdsa_secp256r1_sha256, std::vector<uint8_t>(32, 7));
    CHECK(sig.ok());
}

TEST_CASE("client library: many threads share one pipelined connection", "[server][client]") {
    RunningAgent agent;
    ClientOptions one_connection{agent.path(), 10s, "unit"};
    one_connection.connections = 1;
    Client client(one_connection);
    auto key = client.get_key("fastkey");
    REQUIRE(key.ok());
    const unsigned char* p = key->spki.data();
    EVP_PKEY* pub = d2i_PUBKEY(nullptr, &p, static_cast<long>(key->spki.size()));
    REQUIRE(pub);
    std::atomic<int> good{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 50; ++i) {
                std::vector<uint8_t> digest(32, static_cast<uint8_t>(t * 50 + i));
                auto sig = client.sign("fastkey", ipc::Scheme::ecdsa_secp256r1_sha256, digest);
                if (!sig.ok()) continue;
                EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(pub, nullptr);
                if (EVP_PKEY_verify_init(ctx) == 1 &&
                    EVP_PKEY_verify(ctx, sig->data(), sig->size(), digest.data(), digest.size()) == 1)
                    ++good;
                EVP_PKEY_CTX_free(ctx);
            }
        });
    for (auto& t : threads) t.join();
    EVP_PKEY_free(pub);
    CHECK(good == 400);
    auto st = client.status();
    REQUIRE(st.ok());
    CHECK(st->signatures == 400);
    CHECK(st->tokens.size() == 2);
}

TEST_CASE("agent: two callers on two event loops are signed on both loops' threads", "[server][client]") {
    RunningAgent agent(0600, {}, /*fast_shares=*/2, /*loops=*/2);
    ClientOptions two{agent.path(), 10s, "unit"};
    two.connections = 2;  // the two threads below take one each
    Client client(two);
    const std::vector<uint8_t> digest(32, 3);
    std::atomic<int> good{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 40; ++i)
                good += client.sign("fastkey", ipc::Scheme::ecdsa_secp256r1_sha256, digest).ok();
        });
    for (auto& t : threads) t.join();
    CHECK(good == 80);
    auto signed_on = agent.backend("fast").sign_threads();
    REQUIRE(signed_on.size() == 80);
    // Each connection went to the loop with fewer connections, and each loop signed its
    // caller's requests itself: both loops appear, and (the first, timing signature aside)
    // no signature needed a worker.
    std::set<std::thread::id> loops_used;
    size_t on_workers = 0;
    for (auto id : signed_on) {
        if (agent.on_event_loop(id)) loops_used.insert(id);
        else ++on_workers;
    }
    CHECK(loops_used.size() == 2);
    CHECK(on_workers <= 2);
}

TEST_CASE("client library: errors are typed and name the cause", "[client]") {
    Client nowhere({"/nonexistent/keyward.sock", 1s, "unit"});
    auto r = nowhere.status();
    CHECK(r.status().code == ErrorCode::agent_unreachable);
    CHECK(r.status().message.find("/nonexistent/keyward.sock") != std::string::npos);

    RunningAgent agent;
    Client client({agent.path(), 5s, "unit"});
    auto missing = client.sign("nope", ipc::Scheme::ecdsa_secp256r1_sha256, std::vector<uint8_t>(32));
    CHECK(missing.status().code == ErrorCode::no_such_key);
    auto made = client.generate_key({"newkey", "ec-p256", "fast"});
    REQUIRE(made.ok());
    CHECK(made->token == "fast");
    CHECK(client.generate_key({"newkey", "ec-p256", ""}).status().code == ErrorCode::key_exists);
    CHECK(client.generate_key({"bad/name", "ec-p256", ""}).status().code == ErrorCode::invalid_argument);
    CHECK(client.generate_key({"x", "dsa-512", ""}).status().code == ErrorCode::invalid_argument);
    CHECK(client.delete_key("newkey").ok());
    CHECK(client.get_key("newkey").status().code == ErrorCode::no_such_key);
}

TEST_CASE("client library: a forked child gets its own connection", "[client]") {
    RunningAgent agent;
    Client client({agent.path(), 5s, "unit"});
    REQUIRE(client.status().ok());  // the parent is connected now
    pid_t pid = ::fork();
    if (pid == 0) {
        auto sig = client.sign("fastkey", ipc::Scheme::ecdsa_secp256r1_sha256, std::vector<uint8_t>(32, 3));
        ::_exit(sig.ok() ? 0 : 1);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    // The parent's connection was not disturbed by the child.
    CHECK(client.sign("fastkey", ipc::Scheme::ecdsa_secp256r1_sha256, std::vector<uint8_t>(32, 4)).ok());
}

TEST_CASE("client library: a process that dropped privileges does not keep root's connection", "[client]") {
    RunningAgent agent(0666);
    pid_t pid = ::fork();
    if (pid == 0) {
        Client client({agent.path(), 5s, "unit"});
        // As root: the connection is root's, and root may sign.
        if (!client.sign("fastkey", ipc::Scheme::ecdsa_secp256r1_sha256, std::vector<uint8_t>(32, 1)).ok()) ::_exit(2);
        if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
            ::setresuid(65534, 65534, 65534) != 0)
            ::_exit(3);
        auto after = client.sign("fastkey", ipc::Scheme::ecdsa_secp256r1_sha256, std::vector<uint8_t>(32, 2));
        ::_exit(after.ok() ? 4 : after.status().code == ErrorCode::access_denied ? 0 : 5);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status));
    // 4 would mean the signature was made with root's rights after setuid().
    CHECK(WEXITSTATUS(status) == 0);
}

// The agent's end of each of this process's Unix-socket connections ("socket:[inode]").
std::set<std::string> open_sockets() {
    std::set<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        const auto target = std::filesystem::read_symlink(e.path(), ec).string();
        if (!ec && target.rfind("socket:", 0) == 0) out.insert(target);
    }
    return out;
}

TEST_CASE("client library: a process with supplementary groups keeps its connection", "[client]") {
    // The credential check compares with who connected: a process that is not root without
    // groups (here root with one supplementary group) must not reconnect on every request.
    RunningAgent agent(0666);
    pid_t pid = ::fork();
    if (pid == 0) {
        const gid_t groups[] = {65534};
        if (::setgroups(1, groups) != 0) ::_exit(3);
        Client client({agent.path(), 5s, "unit"});
        if (!client.sign("fastkey", ipc::Scheme::ecdsa_secp256r1_sha256, std::vector<uint8_t>(32, 1)).ok()) ::_exit(2);
        const auto first = open_sockets();
        for (int i = 0; i < 5; ++i)
            if (!client.sign("fastkey", ipc::Scheme::ecdsa_secp256r1_sha256, std::vector<uint8_t>(32, 2)).ok())
                ::_exit(2);
        ::_exit(open_sockets() == first ? 0 : 4);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status));
    // 4: the client opened a new connection for a request although nothing changed.
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("client library: a connection the agent closed while idle is replaced unnoticed", "[client]") {
    ServerLimits limits;
    limits.idle_timeout = 1s;
    RunningAgent agent(0600, limits);
    Client client({agent.path(), 5s, "unit"});
    REQUIRE(client.status().ok());
    std::this_thread::sleep_for(2500ms);  // the agent's sweep closes the idle connection
    // Not retried behind the caller's back if lost, so it must not find the connection dead.
    auto made = client.generate_key({"after-idle", "ec-p256", "fast"});
    CHECK(made.ok());
    if (!made.ok()) FAIL(made.status().message);
}

TEST_CASE("client library: LIST_KEYS answers in pages, 10,000 keys arrive whole and in order", "[client]") {
    RunningAgent agent;
    Client client({agent.path(), 30s, "unit"});
    constexpr int kKeys = 10000;
    for (int i = 0; i < kKeys; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "k%05d", i);
        auto made = client.generate_key({name, "ec-p256", "fast"});
        REQUIRE(made.ok());
    }
    auto keys = client.list_keys();
    REQUIRE(keys.ok());
    REQUIRE(keys->size() == kKeys + 2);  // and the two keys the agent started with
    const auto& list = keys.value();
    for (size_t i = 1; i < list.size(); ++i) CHECK(list[i - 1].name < list[i].name);
    // The whole list would not fit one frame: it really came in pages.
    std::vector<uint8_t> out;
    ipc::ListKeysResponse all{list, {}};
    CHECK_FALSE(ipc::encode_response(out, 1, all));
}
