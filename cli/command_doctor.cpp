// keyward doctor: the agent's health checks, one line each (agent/doctor.hpp does the
// checking: the running agent knows its configuration and devices). With --config FILE the
// file is checked without an agent by `keywardd --doctor`, which owns the parser.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/json_output.hpp"
#include "cli/key_view.hpp"

namespace po = boost::program_options;

namespace keyward::cli {
namespace {

constexpr int kDoctorWarnings = 1;
constexpr int kDoctorFailures = 2;

// keywardd: $KEYWARD_AGENT_BIN, else beside this program (installed: ../sbin; the build
// tree: ../agent), else /usr/sbin.
std::string agent_binary() {
    if (const char* env = std::getenv("KEYWARD_AGENT_BIN"); env && *env) return env;
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec)
        for (const char* rel : {"../sbin/keywardd", "../agent/keywardd"}) {
            auto candidate = self.parent_path() / rel;
            if (::access(candidate.c_str(), X_OK) == 0) return candidate.lexically_normal().string();
        }
    return "/usr/sbin/keywardd";
}

const char* level_word(const std::string& level) {
    if (level == "ok") return "ok      ";
    if (level == "warning") return "WARNING ";
    if (level == "skipped") return "skipped ";
    return "FAILURE ";
}

}  // namespace

int run_doctor(Context& ctx) {
    static const CommandSyntax syntax{
        "doctor [--config FILE]",
        "Checks the agent's health: configuration, state directory permissions, tokens (present, PIN file "
        "readable, logged in), key policies, identities (certificate matches its device key and chains to the "
        "trust anchors, time left, last attempt, issuer reachable), the clock, and whether the configured users "
        "and groups can reach the socket. One line per check; each failure says how to fix it. "
        "With --config FILE, checks that file without an agent (what can be checked offline). "
        "Exit status: 0 all ok, 1 warnings, 2 failures (3 when the agent cannot be reached).",
        {}};
    po::options_description options("Options");
    options.add_options()("config", po::value<std::string>()->value_name("FILE"),
                          "check this configuration file without asking the agent");
    po::variables_map vm;
    if (auto done = parse_command(ctx, syntax, options, vm)) return *done;

    if (const std::string config = string_option(vm, "config"); !config.empty()) {
        const std::string agent = agent_binary();
        std::vector<const char*> argv = {agent.c_str(), "--doctor", "--config", config.c_str()};
        if (ctx.global().json) argv.push_back("--json");
        argv.push_back(nullptr);
        std::fflush(nullptr);
        ::execv(agent.c_str(), const_cast<char* const*>(argv.data()));
        return ctx.error("cannot run " + agent + " for the offline checks: " + std::strerror(errno) +
                         " (set KEYWARD_AGENT_BIN to keywardd's path)");
    }

    auto answer = ctx.client_with_timeout(std::chrono::seconds(120))->doctor();
    if (!answer.ok()) {
        if (answer.status().code == ErrorCode::unknown_operation)
            return ctx.error(
                "this agent is older than `keyward doctor`; check its file offline with "
                "`keyward doctor --config /etc/keyward/keyward.toml`");
        return ctx.fail(answer.status(), "doctor");
    }
    auto doc = nlohmann::json::parse(answer.value(), nullptr, false);
    if (doc.is_discarded() || !doc.contains("checks") || !doc["checks"].is_array())
        return ctx.error("the agent's doctor answer is not the expected JSON document");
    if (ctx.global().json) {
        std::fputs(answer.value().c_str(), stdout);
    } else {
        for (const auto& c : doc["checks"]) {
            std::string line = std::string(level_word(c.value("level", ""))) + c.value("area", "") + " " +
                               c.value("name", "") + ": " + c.value("message", "");
            if (const std::string fix = c.value("fix", ""); !fix.empty()) line += "; fix: " + fix;
            std::printf("%s\n", printable(line).c_str());
        }
    }
    if (doc.value("failures", 0) > 0) return kDoctorFailures;
    if (doc.value("warnings", 0) > 0) return kDoctorWarnings;
    return exit_ok;
}

}  // namespace keyward::cli
