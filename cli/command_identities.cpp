// keyward enroll NAME | renew NAME [--now] [--rekey] [--compromised] | identities list
// | identities show NAME | identities rollback NAME | identities revoke NAME [--reason R]
// [--retire [--yes]] — the certificate identities keywardd manages.
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/identity_view.hpp"
#include "cli/key_view.hpp"

namespace po = boost::program_options;

namespace keyward::cli {
namespace {

using Json = nlohmann::json;

// Renewals talk to a CA and may make a key on a device: far longer than a signature.
constexpr std::chrono::seconds kRenewTimeout{300};

std::string str(const Json& v, const char* key) {
    auto it = v.find(key);
    if (it == v.end() || it->is_null()) return "-";
    if (it->is_string()) return printable(it->get<std::string>());
    return it->dump();
}

std::string relative(const Json& v, const char* unix_key) {
    auto it = v.find(unix_key);
    if (it == v.end() || !it->is_number()) return {};
    const int64_t delta = it->get<int64_t>() - static_cast<int64_t>(std::time(nullptr));
    const int64_t a = delta < 0 ? -delta : delta;
    std::string amount = a >= 86400  ? std::to_string(a / 86400) + "d"
                         : a >= 3600 ? std::to_string(a / 3600) + "h"
                         : a >= 60   ? std::to_string(a / 60) + "m"
                                     : std::to_string(a) + "s";
    return delta >= 0 ? "in " + amount : amount + " ago";
}

bool is_alarming(const Json& v) {
    const std::string status = v.value("status", "");
    return status == "expired" || status == "renewal failing" || status == "not enrolled" || status == "unreadable" ||
           status == "revoked" || v.contains("error");
}

// Prints the answer of a renew/enroll and chooses the exit code from its result.
int report_renewal(Context& ctx, const Result<std::string>& answer, const std::string& action, bool enroll) {
    auto view = parse_identity_view(answer);
    if (!view.ok()) return ctx.fail(view.status(), action);
    const Json& v = view.value();
    const Json result = v.value("result", Json::object());
    const std::string what = result.value("action", "");
    const std::string message = result.value("message", "");
    if (ctx.global().json) {
        std::fputs(answer.value().c_str(), stdout);
    } else {
        if (what == "issued") std::printf("%s: %s\n", str(v, "name").c_str(), printable(message).c_str());
        else if (what == "pending")
            std::printf("%s: pending — %s (the agent keeps polling; see `keyward identities show %s`)\n",
                        str(v, "name").c_str(), printable(message).c_str(), str(v, "name").c_str());
        else if (what == "not_due")
            std::printf("%s: %s%s\n", str(v, "name").c_str(), enroll ? "already enrolled; " : "",
                        printable(message).c_str());
        std::fputs(identity_text(v).c_str(), stdout);
    }
    if (what == "failed") {
        std::fprintf(stderr, "keyward: %s: %s — the current certificate (if any) stays in force\n", action.c_str(),
                     printable(message).c_str());
        return exit_failure;
    }
    if (what == "interrupted") {  // the agent stopped meanwhile: like a lost connection
        std::fprintf(stderr, "keyward: %s: interrupted, %s — the current certificate (if any) stays in force\n",
                     action.c_str(), printable(message).c_str());
        return exit_unreachable;
    }
    return exit_ok;
}

int renew_or_enroll(Context& ctx, bool enroll) {
    static const CommandSyntax enroll_syntax{
        "enroll NAME",
        "Gets the first certificate of identity NAME from its issuer: creates its device key if missing, has the "
        "device sign a CSR, validates the answer and puts it in force. When the identity already has a "
        "certificate, says so (use `keyward renew NAME --now`).",
        {"identity NAME"}};
    static const CommandSyntax renew_syntax{
        "renew NAME [--now] [--rekey] [--compromised]",
        "Renews identity NAME when its renewal is due (or enrolls it when it has no certificate). --now renews "
        "regardless of the schedule and any backoff; --rekey makes a new key on the device for this renewal (the "
        "old key is destroyed after the grace period). --compromised is for a key that may be compromised: a "
        "rekey, after which the replaced certificate is revoked (keyCompromise) and the old key destroyed at once. "
        "A failure keeps the current certificate in force.",
        {"identity NAME"}};
    po::options_description options("Options");
    if (!enroll)
        options.add_options()("now", "renew even if not due")("rekey", "generate a new device key for this renewal")(
            "compromised", "rekey, then revoke the replaced certificate (keyCompromise)");
    po::variables_map vm;
    if (auto done = parse_command(ctx, enroll ? enroll_syntax : renew_syntax, options, vm)) return *done;
    const std::string name = positional_arg(vm, 0);
    uint8_t flags = 0;
    if (!enroll && vm.count("now")) flags |= ipc::kRenewNow;
    if (!enroll && vm.count("rekey")) flags |= ipc::kRenewRekey | ipc::kRenewNow;
    if (!enroll && vm.count("compromised")) flags |= ipc::kRenewCompromised | ipc::kRenewRekey | ipc::kRenewNow;
    auto client = ctx.client_with_timeout(kRenewTimeout);
    return report_renewal(ctx, client->renew(name, flags), ctx.command() + " " + name, enroll);
}

// `identities show` and `identities rollback`: the agent's view of one identity, as it
// sent it with --json, else as identity_text.
int print_view(Context& ctx, const Result<std::string>& answer, const std::string& action) {
    auto view = parse_identity_view(answer);
    if (!view.ok()) return ctx.fail(view.status(), action);
    if (ctx.global().json) std::fputs(answer.value().c_str(), stdout);
    else std::fputs(identity_text(view.value()).c_str(), stdout);
    return exit_ok;
}

}  // namespace

Result<Json> parse_identity_view(const Result<std::string>& answer) {
    if (!answer.ok()) return answer.status();
    try {
        return Json::parse(answer.value());
    } catch (const std::exception& e) {
        return Status{ErrorCode::protocol_error, std::string("the agent's identity view is not JSON: ") + e.what()};
    }
}

std::string identity_summary_line(const Json& v) {
    const std::string mark = is_alarming(v) ? "!" : " ";
    std::string line = mark + " " + str(v, "name");
    line.resize(std::max<size_t>(line.size() + 1, 18), ' ');
    line += str(v, "status");
    line.resize(std::max<size_t>(line.size() + 1, 36), ' ');
    std::string expiry = v.contains("not_after") && !v["not_after"].is_null()
                             ? "expires " + str(v, "not_after") + " (" + relative(v, "not_after_unix") + ")"
                             : "no certificate";
    line += expiry;
    if (v.contains("next_renewal") && !v["next_renewal"].is_null())
        line += "; next attempt " + relative(v, "next_renewal_unix");
    const Json last = v.value("last_attempt", Json());
    if (last.is_object() && v.value("failures", 0) > 0)
        line +=
            "\n    last attempt: " + printable(last.value("outcome", "")) + ": " + printable(last.value("message", ""));
    if (v.contains("error")) line += "\n    error: " + str(v, "error");
    return line + "\n";
}

std::string identity_text(const Json& v) {
    std::string out;
    auto row = [&](const char* label, const std::string& value) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "  %-14s ", label);
        out += buf + value + "\n";
    };
    out += "identity " + str(v, "name") + (is_alarming(v) ? "  [" + str(v, "status") + "]" : "") + "\n";
    row("status:", str(v, "status"));
    row("key:", str(v, "key") + " (" + str(v, "key_type") + ")");
    row("issuer:", str(v, "issuer"));
    row("subject:", str(v, "subject"));
    std::string sans;
    for (const auto& s : v.value("sans", Json::array()))
        sans += (sans.empty() ? "" : ", ") + printable(s.get<std::string>());
    row("SANs:", sans.empty() ? "-" : sans);
    if (!v.value("serial", Json()).is_null()) {
        row("serial:", str(v, "serial"));
        row("not before:", str(v, "not_before"));
        row("not after:", str(v, "not_after") + " (" + relative(v, "not_after_unix") + ")");
    }
    const Json revocation = v.value("revocation", Json());
    if (revocation.is_object())
        row("revoked:", str(revocation, "time") + " (" + str(revocation, "reason") + ", " + str(revocation, "source") +
                            "; serial " + str(revocation, "serial") + ")");
    const Json check = v.value("revocation_check", Json());
    if (check.is_object())
        row("revocation:", str(check, "result") + " (checked " + str(check, "time") + ", next " + str(check, "next") +
                               ": " + str(check, "message") + ")");
    row("next renewal:", v.value("next_renewal", Json()).is_null()
                             ? std::string("- (enroll with `keyward enroll ") + str(v, "name") + "`)"
                             : str(v, "next_renewal") + " (" + relative(v, "next_renewal_unix") + ")");
    const Json last = v.value("last_attempt", Json());
    if (last.is_object())
        row("last attempt:", printable(last.value("time", "")) + " " + printable(last.value("outcome", "")) + ": " +
                                 printable(last.value("message", "")));
    if (v.value("failures", 0) > 0) row("failures:", std::to_string(v.value("failures", 0)) + " in a row");
    const Json pending = v.value("pending", Json());
    if (pending.is_object())
        row("pending:", "the CA asked to wait (since " + printable(pending.value("since", "")) + ")");
    const Json hooks = v.value("hooks", Json());
    if (hooks.is_object() && hooks.value("outcome", "") == "failed")
        row("hooks:", "FAILED: " + printable(hooks.value("message", "")));
    const Json files = v.value("files", Json::object());
    row("certificate:", str(files, "cert"));
    row("chain:", str(files, "chain"));
    row("full chain:", str(files, "fullchain"));
    row("key ref:", str(files, "keyref"));
    row("generation:", str(v, "generation"));
    const Json prev = v.value("previous", Json());
    row("previous:", prev.is_object() ? "generation " + str(prev, "generation") + " (key " + str(prev, "key") +
                                            "; `keyward identities rollback " + str(v, "name") + "`)"
                                      : "-");
    for (const auto& d : v.value("keys_to_destroy", Json::array()))
        row("destroy key:", str(d, "key") + " after " + str(d, "after"));
    if (v.contains("error")) row("error:", str(v, "error"));
    return out;
}

int run_enroll(Context& ctx) { return renew_or_enroll(ctx, true); }
int run_renew(Context& ctx) { return renew_or_enroll(ctx, false); }

int run_identities_list(Context& ctx) {
    static const CommandSyntax syntax{
        "identities list",
        "Lists the certificate identities: status, expiry, next renewal. Lines marked '!' need attention "
        "(expired, failing renewals, not enrolled).",
        {}};
    if (auto done = parse_command(ctx, syntax)) return *done;
    auto answer = ctx.client().list_identities();
    auto view = parse_identity_view(answer);
    if (!view.ok()) return ctx.fail(view.status(), "identities list");
    if (ctx.global().json) {
        std::fputs(answer.value().c_str(), stdout);
        return exit_ok;
    }
    const Json list = view->value("identities", Json::array());
    if (list.empty()) std::printf("(no identities)\n");
    for (const auto& v : list) std::fputs(identity_summary_line(v).c_str(), stdout);
    return exit_ok;
}

int run_identities_show(Context& ctx) {
    static const CommandSyntax syntax{
        "identities show NAME",
        "Shows identity NAME: key, subject, SANs, issuer, validity, next renewal, the last attempt and its outcome, "
        "and the files (certificate, chain, key reference) programs can point at.",
        {"identity NAME"}};
    po::variables_map vm;
    if (auto done = parse_command(ctx, syntax, vm)) return *done;
    const std::string name = positional_arg(vm, 0);
    return print_view(ctx, ctx.client().get_identity(name), "identities show " + name);
}

int run_identities_rollback(Context& ctx) {
    static const CommandSyntax syntax{
        "identities rollback NAME",
        "Puts the previous generation of identity NAME (certificate and key) back in force in one atomic switch, "
        "and runs the hooks. Possible while the previous key exists (its grace period) and its certificate is "
        "valid. Automatic renewal then waits retry_max; `keyward renew NAME --now` renews at once.",
        {"identity NAME"}};
    po::variables_map vm;
    if (auto done = parse_command(ctx, syntax, vm)) return *done;
    const std::string name = positional_arg(vm, 0);
    return print_view(ctx, ctx.client_with_timeout(kRenewTimeout)->rollback(name), "identities rollback " + name);
}

namespace {

// --retire destroys keys: on a terminal the operator confirms by typing the identity's name.
bool confirmed_retire(const std::string& name) {
    if (::isatty(STDIN_FILENO) != 1) return false;
    std::fprintf(stderr,
                 "Retiring identity %s revokes its certificate, removes its certificate files and destroys its "
                 "device keys; this cannot be undone.\nType the identity's name to go on: ",
                 printable(name).c_str());
    std::string answer;
    return static_cast<bool>(std::getline(std::cin, answer)) && answer == name;
}

}  // namespace

int run_identities_revoke(Context& ctx) {
    static const CommandSyntax syntax{
        "identities revoke NAME [--reason REASON] [--retire [--yes]]",
        "Asks the CA of identity NAME to revoke its certificate in force (ACME revokeCert, CMP rr, or the helper "
        "with CERTMONGER_OPERATION=REVOKE). REASON: unspecified (default), keyCompromise, superseded, "
        "cessationOfOperation. Afterwards automatic renewal holds; `keyward renew NAME --now` (or --compromised) "
        "gets a new certificate. --retire also removes the identity's generations and destroys its keys (confirm "
        "on the terminal, or --yes); `keyward enroll NAME` starts it afresh. A CA that refuses or cannot revoke "
        "changes nothing.",
        {"identity NAME"}};
    po::options_description options("Options");
    options.add_options()("reason", po::value<std::string>()->value_name("REASON"), "why (default unspecified)")(
        "retire", "also remove the generations and destroy the keys")("yes", "do not ask before --retire");
    po::variables_map vm;
    if (auto done = parse_command(ctx, syntax, options, vm)) return *done;
    const std::string name = positional_arg(vm, 0);
    ipc::RevokeRequest request{name, vm.count("reason") ? vm["reason"].as<std::string>() : std::string(), 0};
    if (vm.count("retire")) {
        if (!vm.count("yes") && !confirmed_retire(name))
            return ctx.usage_error("--retire destroys the identity's keys: confirm on a terminal or add --yes");
        request.flags |= ipc::kRevokeRetire;
    }
    const std::string action = "identities revoke " + name;
    auto answer = ctx.client_with_timeout(kRenewTimeout)->revoke(request);
    auto view = parse_identity_view(answer);
    if (!view.ok()) return ctx.fail(view.status(), action);
    if (ctx.global().json) {
        std::fputs(answer.value().c_str(), stdout);
        return exit_ok;
    }
    const Json result = view->value("result", Json::object());
    std::printf("%s: %s\n", printable(name).c_str(), printable(result.value("message", "")).c_str());
    std::fputs(identity_text(view.value()).c_str(), stdout);
    return exit_ok;
}

}  // namespace keyward::cli
