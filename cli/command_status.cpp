// keyward status
#include <cstdio>
#include <optional>

#include <nlohmann/json.hpp>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/identity_view.hpp"
#include "cli/json_output.hpp"
#include "cli/key_view.hpp"
#include "cli/status_view.hpp"

namespace po = boost::program_options;

namespace keyward::cli {
namespace {

std::string duration_text(uint64_t seconds) {
    const uint64_t d = seconds / 86400, h = seconds / 3600 % 24, m = seconds / 60 % 60, s = seconds % 60;
    std::string out;
    if (d) out += std::to_string(d) + "d ";
    if (d || h) out += std::to_string(h) + "h ";
    if (d || h || m) out += std::to_string(m) + "m ";
    return out + std::to_string(s) + "s";
}

// The identities, when the agent manages any (an agent without them answers an error,
// which is not a failure of `status`). Identity views come from the lifecycle thread, which
// may be busy with a renewal for minutes: ask with a short timeout of our own.
std::optional<nlohmann::json> identities_of(Context& ctx, bool& busy) {
    auto answer = ctx.client_with_timeout(std::chrono::seconds(3))->list_identities();
    busy = !answer.ok() && answer.status().code == ErrorCode::timeout;
    auto doc = parse_identity_view(answer);
    if (!doc.ok() || !doc->is_object()) return std::nullopt;
    return doc->value("identities", nlohmann::json::array());
}

}  // namespace

int run_status(Context& ctx) {
    static const CommandSyntax syntax{
        "status",
        "Shows the agent's version, uptime, the number of signatures it made, its tokens and their state, "
        "and how many keys it holds.",
        {}};
    if (auto done = parse_command(ctx, syntax)) return *done;

    auto status = ctx.client().status();
    if (!status.ok()) return ctx.fail(status.status(), "status");
    auto hello = ctx.client().hello();
    if (!hello.ok()) return ctx.fail(hello.status(), "status");
    const auto& st = status.value();

    if (ctx.global().json) {
        JsonDocument doc = status_json(ctx.socket_path(), st, hello->version);
        bool busy = false;
        // The identity views are the agent's own documents, put in whole.
        if (auto ids = identities_of(ctx, busy)) doc["identities"] = JsonDocument(*ids);
        return print_json(doc);
    }
    std::printf("agent:       %s (protocol %u)\n", printable(st.server).c_str(), static_cast<unsigned>(hello->version));
    std::printf("socket:      %s\n", ctx.socket_path().c_str());
    std::printf("uptime:      %s\n", duration_text(st.uptime_seconds).c_str());
    std::printf("signatures:  %llu\n", static_cast<unsigned long long>(st.signatures));
    std::printf("keys:        %u\n", st.key_count);
    if (st.tokens.empty()) {
        std::printf("tokens:      (none)\n");
    } else {
        std::printf("tokens:\n");
        for (const auto& t : st.tokens)
            std::printf("  %-16s %-8s %-10s %s\n", printable(t.name).c_str(), printable(t.kind).c_str(),
                        printable(t.state).c_str(), printable(t.description).c_str());
    }
    if (!st.key_use.empty()) {
        // Admins only: which keys are being used, since the agent started (docs/monitoring.md
        // has the same counts over time; the audit trail says by whom).
        std::printf("key use:     (signatures since start)\n");
        for (const auto& u : st.key_use)
            std::printf("  %-24s %10llu%s\n", printable(u.name).c_str(), static_cast<unsigned long long>(u.signatures),
                        u.failed ? (" (" + std::to_string(u.failed) + " failed)").c_str() : "");
    }
    bool busy = false;
    if (auto ids = identities_of(ctx, busy); ids && !ids->empty()) {
        std::printf("identities:  ('!' needs attention; keyward identities show NAME)\n");
        for (const auto& v : *ids) std::fputs(identity_summary_line(v).c_str(), stdout);
    } else if (busy) {
        std::printf("identities:  (busy with a renewal; try again shortly)\n");
    }
    return exit_ok;
}

}  // namespace keyward::cli
