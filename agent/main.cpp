// keywardd: holds non-exportable keys on devices and signs for the programs it trusts.
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <ctime>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <boost/program_options.hpp>

#include "agent/doctor.hpp"
#include "agent/embedded_token.hpp"
#include "agent/lifecycle/issuers.hpp"
#include "agent/metrics.hpp"
#include "agent/metrics_http.hpp"
#include "agent/state_dir.hpp"
#include "agent/systemd.hpp"
#include "core/log.hpp"
#include "agent/server.hpp"
#include "ipc/client.hpp"

namespace po = boost::program_options;
using namespace keyward;
using namespace keyward::agent;

namespace {

struct Options {
    std::string config_path;  // empty: the default path if it exists
    bool config_explicit = false;
    std::string state_dir;
    std::string socket;
    std::string socket_mode;
    std::string log_level;
    bool doctor = false;  // --doctor: check the configuration offline and exit
    bool json = false;
};

constexpr int kExitConfig = 78;  // EX_CONFIG: systemd shows it as "configuration error"

Result<AgentConfig> load(const Options& o) {
    AgentConfig config;
    if (o.config_explicit || std::filesystem::exists(o.config_path)) {
        auto loaded = load_config(o.config_path);
        if (!loaded.ok()) return loaded;
        config = std::move(loaded).value();
    } else {
        config.source.clear();  // built-in defaults: the embedded token
    }
    if (!o.state_dir.empty()) config.state_dir = o.state_dir;
    for (auto& t : config.tokens)
        if (t.kind == "tpm" && t.key_dir.empty()) t.key_dir = config.state_dir + "/tpm/" + t.name;
    if (!o.log_level.empty()) config.log_level = o.log_level;
    if (!o.socket.empty()) config.socket = o.socket;
    else if (config.socket.empty())
        config.socket = config.tokens.empty() ? config.state_dir + "/agent.sock" : std::string(kDefaultSocketPath);
    if (!o.socket_mode.empty()) {
        char* end = nullptr;
        unsigned long mode = std::strtoul(o.socket_mode.c_str(), &end, 8);
        if (*end != '\0' || mode > 0777)
            return Status{ErrorCode::invalid_argument, "--socket-mode: expected an octal mode such as 0660"};
        config.socket_mode = static_cast<mode_t>(mode);
    }
    log::Level level;
    if (!log::parse_level(config.log_level, level))
        return Status{ErrorCode::invalid_argument,
                      (config.source.empty() ? std::string("--log-level") : config.source + ": agent.log_level") +
                          ": expected error, warning, notice, info or debug"};
    return config;
}

// Opens the configured tokens (or the embedded one), reusing already open tokens whose
// configuration is unchanged so a reload never drops a working device.
Result<std::vector<std::shared_ptr<Token>>> open_tokens(const AgentConfig& config,
                                                        const std::vector<std::shared_ptr<Token>>& running) {
    std::vector<TokenConfig> wanted = config.tokens;
    if (wanted.empty()) {
        auto embedded = prepare_embedded_token(config.state_dir, config.seal_embedded_pin);
        if (!embedded.ok()) return embedded.status();
        wanted.push_back(std::move(embedded).value());
    }
    std::vector<std::shared_ptr<Token>> tokens;
    for (const auto& tc : wanted) {
        std::shared_ptr<Token> reused;
        for (const auto& t : running)
            if (t->config == tc) reused = t;
        if (reused) {
            tokens.push_back(reused);
            continue;
        }
        auto opened = open_token(tc);
        if (!opened.ok()) {
            if (config.tokens.empty()) return opened.status();  // the embedded token must work
            log::error(opened.status().message + " (the token stays unavailable until the next reload)");
            continue;
        }
        log::notice("token " + tc.name + ": " + opened.value()->backend->description());
        tokens.push_back(std::move(opened).value());
    }
    return tokens;
}

std::string default_token(const AgentConfig& c) {
    if (!c.default_token.empty()) return c.default_token;
    return c.tokens.empty() ? std::string(kEmbeddedTokenName) : c.tokens.front().name;
}

std::vector<std::string> identity_dirs(const AgentConfig& config) {
    std::vector<std::string> dirs;
    for (const auto& identity : config.identities) dirs.push_back(lifecycle::identity_dir(*identity, config.state_dir));
    return dirs;
}

std::shared_ptr<LifecycleRunner> start_lifecycle(const AgentConfig& config,
                                                 const std::shared_ptr<KeyRegistry>& registry) {
    if (config.identities.empty()) return nullptr;
    auto lifecycle = lifecycle::make_lifecycle(config.identities, make_key_access(registry), config.state_dir,
                                               lifecycle::built_in_issuer_kinds());
    if (!lifecycle) return nullptr;
    return std::make_shared<LifecycleRunner>(std::move(lifecycle));
}

// The metrics endpoint and textfile, when configured; they read the registry and the
// identities as published by the lifecycle thread at each scrape.
Result<std::unique_ptr<metrics::Service>> start_metrics(const AgentConfig& config,
                                                        const std::shared_ptr<KeyRegistry>& registry) {
    if (config.metrics_listen.empty() && config.metrics_file.empty()) return std::unique_ptr<metrics::Service>();
    const auto started = std::chrono::steady_clock::now();
    const double start_time = double(std::time(nullptr));
    auto names = std::make_shared<std::vector<std::string>>();
    auto render = [registry, started, start_time, names]() {
        metrics::Snapshot snap;
        snap.version = KEYWARD_VERSION;
        snap.uptime_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        snap.start_time_seconds = start_time;
        for (const auto& t : registry->tokens())
            snap.tokens.push_back(
                {t->name, std::string(t->backend->kind()), std::string(device_health_name(t->health.load()))});
        for (auto& k : registry->keys()) snap.key_names.push_back(std::move(k.name));
        snap.identities = metrics::identity_board().samples();
        return metrics::render(snap, metrics::signing_counters(), *names);
    };
    metrics::ServiceConfig sc{config.metrics_listen, config.metrics_file,
                              std::chrono::seconds(config.metrics_interval_seconds)};
    auto service = metrics::Service::start(sc, render);
    if (!service.ok()) return service.status();
    metrics::Service* raw = service.value().get();
    metrics::identity_board().on_change([raw] { raw->poke(); });
    if (!config.metrics_listen.empty())
        log::notice("metrics at http://" + config.metrics_listen + "/metrics (port " + std::to_string(raw->port()) +
                    ")");
    return service;
}

std::shared_ptr<const Server::DoctorFn> make_doctor(const AgentConfig& config,
                                                    const std::shared_ptr<KeyRegistry>& registry) {
    auto snapshot = std::make_shared<const AgentConfig>(config);
    return std::make_shared<const Server::DoctorFn>(
        [snapshot, registry]() { return doctor_json(run_doctor(*snapshot, registry)); });
}

// keywardd --doctor: the offline checks, printed like `keyward doctor` prints them (the CLI
// runs this for `keyward doctor --config FILE`, and passes --json through).
int offline_doctor(const Options& options) {
    auto config = load(options);
    std::vector<Check> checks;
    if (!config.ok()) {
        checks.push_back({"config", options.config_path, CheckLevel::failure, config.status().message,
                          "fix the file; `keywardd --doctor --config FILE` checks it again"});
    } else {
        checks = run_doctor(config.value(), nullptr);
    }
    const std::string json = doctor_json(checks);
    if (options.json) {
        std::cout << json;
    } else {
        for (const auto& c : checks) {
            // As `keyward doctor` prints the agent's answer.
            static constexpr const char* kLevel[] = {"ok      ", "WARNING ", "FAILURE ", "skipped "};
            std::cout << kLevel[int(c.level)] << c.area << " " << c.name << ": " << c.message;
            if (!c.fix.empty()) std::cout << "; fix: " << c.fix;
            std::cout << "\n";
        }
    }
    bool warnings = false, failures = false;
    for (const auto& c : checks) {
        warnings |= c.level == CheckLevel::warning;
        failures |= c.level == CheckLevel::failure;
    }
    return failures ? 2 : warnings ? 1 : 0;
}

// Connections cost a descriptor each: take the hard limit (systemd's default soft limit is
// 1024), and size the connection caps from what we got.
size_t raise_open_file_limit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rlimit wanted = rl;
        wanted.rlim_cur = rl.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &wanted) == 0) rl = wanted;
    }
    return rl.rlim_cur == RLIM_INFINITY ? size_t{1} << 20 : static_cast<size_t>(rl.rlim_cur);
}

// Keys never leave their devices, but PINs pass through this process: no core dumps, and
// no ptrace or /proc/PID/mem access by other processes of the same user.
void harden_process() {
    rlimit none{0, 0};
    ::setrlimit(RLIMIT_CORE, &none);
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int run(const Options& options) {
    harden_process();
    // Read (and drop from the environment) before any child can inherit them.
    Notifier notifier = Notifier::from_environment();
    auto inherited = inherited_socket("agent");
    auto config = load(options);
    if (!config.ok()) {
        log::error("configuration error: " + config.status().message);
        return kExitConfig;
    }
    log::Level level = log::Level::info;
    log::parse_level(config->log_level, level);
    log::set_level(level);
    if (Status s = secure_state_dir(config->state_dir, ::geteuid()); !s.ok()) {
        log::error(s.message);
        return kExitConfig;
    }

    // Block the signals before any thread exists; the event loop takes them via signalfd.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    auto tokens = open_tokens(config.value(), {});
    if (!tokens.ok()) {
        log::error(tokens.status().message);
        return 1;
    }
    auto registry = std::make_shared<KeyRegistry>();
    registry->reset(std::move(tokens).value(), default_token(config.value()));

    std::filesystem::path socket_path(config->socket);
    if (socket_path.has_parent_path()) {
        std::error_code ec;
        std::filesystem::create_directories(socket_path.parent_path(), ec);
    }
    mode_t mode = config->socket_mode.value_or(config->socket_group ? 0660 : 0600);
    Result<Listener> listener = Status{ErrorCode::internal, "no socket"};
    if (inherited) {
        if (!inherited->error.empty()) {
            log::error(inherited->error);
            return 1;
        }
        listener = Listener::adopt(inherited->fd);
    } else {
        listener = Listener::open(config->socket, mode, config->socket_group);
    }
    if (!listener.ok()) {
        log::error(listener.status().message);
        return 1;
    }

    auto metrics_service = start_metrics(config.value(), registry);
    if (!metrics_service.ok()) {
        log::error(metrics_service.status().message);
        return kExitConfig;
    }
    const uid_t agent_uid = ::getuid();
    const size_t open_files = raise_open_file_limit();
    AgentConfig running = config.value();
    auto reload = [&](Server& server) -> Status {
        auto fresh = load(options);
        if (!fresh.ok()) return fresh.status();
        if (fresh->socket != running.socket)
            log::warning("the socket path changed in the configuration; restart keywardd to move it");
        if (fresh->metrics_listen != running.metrics_listen || fresh->metrics_file != running.metrics_file ||
            fresh->metrics_interval_seconds != running.metrics_interval_seconds)
            log::warning("the metrics settings changed in the configuration; restart keywardd to apply them");
        if (fresh->event_loops != running.event_loops)
            log::warning("event_loops changed in the configuration; restart keywardd to apply it");
        if (fresh->identities.empty()) metrics::identity_board().clear();
        auto reopened = open_tokens(fresh.value(), server.registry().tokens());
        if (!reopened.ok()) return reopened.status();
        server.registry().reset(std::move(reopened).value(), default_token(fresh.value()));
        server.set_lifecycle(start_lifecycle(fresh.value(), registry));
        server.set_identity_dirs(identity_dirs(fresh.value()));
        server.set_policy(std::make_shared<AccessPolicy>(fresh.value(), agent_uid));
        server.set_limits(limits_for(fresh.value(), open_files));
        server.set_doctor(make_doctor(fresh.value(), registry));
        log::Level lvl = log::Level::info;
        log::parse_level(fresh->log_level, lvl);
        log::set_level(lvl);
        running = std::move(fresh).value();
        return {};
    };

    Status result;
    {
        Server server(std::move(listener).value(), registry, std::make_shared<AccessPolicy>(config.value(), agent_uid),
                      reload);
        server.set_lifecycle(start_lifecycle(config.value(), registry));
        server.set_identity_dirs(identity_dirs(config.value()));
        server.set_limits(limits_for(config.value(), open_files));
        server.set_event_loops(config->event_loops);
        server.set_notifier(std::move(notifier));
        server.set_doctor(make_doctor(config.value(), registry));
        log::notice(std::string("keywardd ") + KEYWARD_VERSION + " ready" +
                    (config->source.empty() ? " (embedded token in " + config->state_dir + ")"
                                            : " (configuration " + config->source + ")"));
        result = server.run();
        // Finish the work in flight before the server (which the jobs answer through) goes;
        // renewals in progress give up at their next safe point rather than hold up the stop.
        server.set_lifecycle(nullptr);
        LifecycleRunner::stop_retired();
        registry->reset({}, {});
    }
    metrics::identity_board().on_change({});
    metrics_service.value().reset();
    if (!result.ok()) {
        log::error(result.message);
        return 1;
    }
    log::notice("stopped");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    po::options_description desc("Usage: keywardd [options]\n\nOptions");
    desc.add_options()("help,h", "show this help")("version", "print the version")(
        "config,c", po::value(&options.config_path),
        "configuration file (default /etc/keyward/keyward.toml; without it: the embedded token)")(
        "state-dir", po::value(&options.state_dir), "state directory (default /var/lib/keyward)")(
        "socket", po::value(&options.socket), "listening socket (default STATE_DIR/agent.sock without a config)")(
        "socket-mode", po::value(&options.socket_mode), "socket permissions, octal (default 0600, 0660 with a group)")(
        "log-level", po::value(&options.log_level), "error, warning, notice, info or debug")(
        "doctor", "check the configuration, files and issuers without starting (exit 0 ok, 1 warnings, 2 failures)")(
        "json", "with --doctor: the checks as JSON");
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << "keywardd: " << e.what() << "\n" << desc;
        return 2;
    }
    if (vm.count("help")) {
        std::cout << desc;
        return 0;
    }
    if (vm.count("version")) {
        std::cout << "keywardd " << KEYWARD_VERSION << "\n";
        return 0;
    }
    options.config_explicit = vm.count("config") > 0;
    if (!options.config_explicit) options.config_path = std::string(kDefaultConfigPath);
    options.doctor = vm.count("doctor") > 0;
    options.json = vm.count("json") > 0;
    if (options.doctor) {
        try {
            return offline_doctor(options);
        } catch (const std::exception& e) {
            std::cerr << "keywardd --doctor: " << e.what() << "\n";
            return 2;
        }
    }
    try {
        return run(options);
    } catch (const std::exception& e) {
        log::error(std::string("fatal: ") + e.what());
        return 1;
    }
}
