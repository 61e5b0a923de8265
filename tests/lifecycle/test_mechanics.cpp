// The mechanics under the lifecycle: helper exit codes, running programs (timeouts, clean
// environment, output cap) and the generation store's crash safety.
#include <catch2/catch.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <fstream>

#include "core/durable_file.hpp"
#include "agent/lifecycle/helper_issuer.hpp"
#include "agent/lifecycle/state.hpp"
#include "agent/lifecycle/store.hpp"
#include "agent/lifecycle/subprocess.hpp"

using namespace keyward;
using namespace keyward::lifecycle;
namespace fs = std::filesystem;

namespace {

CommandOutcome exited(int code, std::string out) {
    CommandOutcome o;
    o.started = true;
    o.exit_code = code;
    o.out = std::move(out);
    return o;
}

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/keyward-lifecycle-XXXXXX";
        REQUIRE(mkdtemp(tmpl));
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

}  // namespace

TEST_CASE("certmonger helper exit codes map to issue outcomes", "[helper]") {
    auto r = interpret_helper_answer(exited(0, "-----BEGIN CERTIFICATE-----\n..."), 60);
    CHECK(r.kind == IssueResult::Kind::issued);
    CHECK(r.cert_pem.find("BEGIN CERTIFICATE") != std::string::npos);

    r = interpret_helper_answer(exited(1, "cookie-42\n"), 60);
    CHECK(r.kind == IssueResult::Kind::pending);
    CHECK(r.cookie == "cookie-42");
    CHECK(r.retry_after.count() == 0);

    r = interpret_helper_answer(exited(5, "30\ncookie-7\n"), 60);
    CHECK(r.kind == IssueResult::Kind::pending);
    CHECK(r.cookie == "cookie-7");
    CHECK(r.retry_after.count() == 30);

    r = interpret_helper_answer(exited(2, "policy says no\n"), 60);
    CHECK(r.kind == IssueResult::Kind::rejected);
    CHECK(r.message == "the CA rejected the request: policy says no");

    CHECK(interpret_helper_answer(exited(3, "connection refused"), 60).kind == IssueResult::Kind::unreachable);
    CHECK(interpret_helper_answer(exited(4, ""), 60).kind == IssueResult::Kind::misconfigured);
    CHECK(interpret_helper_answer(exited(6, ""), 60).kind == IssueResult::Kind::misconfigured);
    CHECK(interpret_helper_answer(exited(17, ""), 60).kind == IssueResult::Kind::unreachable);

    CommandOutcome timed_out;
    timed_out.started = true;
    timed_out.timed_out = true;
    r = interpret_helper_answer(timed_out, 60);
    CHECK(r.kind == IssueResult::Kind::unreachable);
    CHECK_THAT(r.message, Catch::Contains("timed out after 1m"));

    CommandOutcome missing;
    missing.error = "/nonexistent: No such file or directory";
    CHECK(interpret_helper_answer(missing, 60).kind == IssueResult::Kind::misconfigured);
}

TEST_CASE("certmonger helper exit codes map to revocation outcomes", "[helper][revoke]") {
    using Kind = RevokeResult::Kind;
    auto r = interpret_helper_revoke_answer(exited(0, "revoked 4B57\n"), 60);
    CHECK(r.kind == Kind::revoked);
    CHECK_THAT(r.message, Catch::Contains("revoked 4B57"));
    r = interpret_helper_revoke_answer(exited(2, "not yours\n"), 60);
    CHECK(r.kind == Kind::rejected);
    CHECK(r.message == "the CA refused to revoke: not yours");
    CHECK(interpret_helper_revoke_answer(exited(3, ""), 60).kind == Kind::unreachable);
    CHECK(interpret_helper_revoke_answer(exited(4, ""), 60).kind == Kind::misconfigured);
    r = interpret_helper_revoke_answer(exited(6, ""), 60);
    CHECK(r.kind == Kind::unsupported);
    CHECK_THAT(r.message, Catch::Contains("this issuer cannot revoke"));
    // A wait answer makes no sense for a revocation: a failure to try again.
    CHECK(interpret_helper_revoke_answer(exited(1, "cookie\n"), 60).kind == Kind::unreachable);
    CHECK(interpret_helper_revoke_answer(exited(127, ""), 60).kind == Kind::misconfigured);
    CommandOutcome timed_out;
    timed_out.started = true;
    timed_out.timed_out = true;
    CHECK(interpret_helper_revoke_answer(timed_out, 60).kind == Kind::unreachable);
    CommandOutcome missing;
    missing.error = "/nonexistent: No such file or directory";
    CHECK(interpret_helper_revoke_answer(missing, 60).kind == Kind::misconfigured);
}

TEST_CASE("revocation reasons by name and RFC 5280 code", "[revoke]") {
    CHECK(revocation_reason_from_name("keyCompromise") == RevocationReason::key_compromise);
    CHECK(static_cast<int>(*revocation_reason_from_name("cessationOfOperation")) == 5);
    CHECK(static_cast<int>(*revocation_reason_from_name("superseded")) == 4);
    CHECK(static_cast<int>(*revocation_reason_from_name("unspecified")) == 0);
    CHECK_FALSE(revocation_reason_from_name("keycompromise"));
    CHECK_FALSE(revocation_reason_from_name(""));
    CHECK(revocation_reason_name(RevocationReason::superseded) == "superseded");
}

TEST_CASE("programs run without a shell, with only the environment given", "[subprocess]") {
    ::setenv("KEYWARD_TEST_SECRET", "must-not-leak", 1);
    auto o = run_command({"/usr/bin/env"}, {"ONLY=this"}, 10);
    ::unsetenv("KEYWARD_TEST_SECRET");
    REQUIRE(o.started);
    CHECK(o.exit_code == 0);
    CHECK(o.out.find("ONLY=this") != std::string::npos);
    CHECK(o.out.find("PATH=") != std::string::npos);
    CHECK(o.out.find("must-not-leak") == std::string::npos);
    // Arguments are not interpreted by a shell.
    o = run_command({"/bin/echo", "$HOME;", "`id`"}, {}, 10);
    CHECK(o.out == "$HOME; `id`\n");
}

TEST_CASE("exit codes, signals, missing programs", "[subprocess]") {
    auto o = run_command({"/bin/sh", "-c", "echo oops >&2; exit 3"}, {}, 10);
    CHECK(o.exit_code == 3);
    CHECK(o.err == "oops\n");
    o = run_command({"/bin/sh", "-c", "kill -TERM $$"}, {}, 10);
    CHECK(o.signal == 15);
    o = run_command({"/nonexistent/helper"}, {}, 10);
    CHECK_FALSE(o.started);
    CHECK_THAT(o.error, Catch::Contains("No such file"));
    o = run_command({"relative/helper"}, {}, 10);
    CHECK_FALSE(o.started);
}

TEST_CASE("a hanging program is killed with its children at the timeout", "[subprocess]") {
    TempDir tmp;
    const std::string marker = tmp.path + "/child-survived";
    const auto start = std::chrono::steady_clock::now();
    auto o = run_command({"/bin/sh", "-c", "(sleep 3; touch " + marker + ") & sleep 30"}, {}, 1);
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(o.timed_out);
    CHECK(took < std::chrono::seconds(5));
    ::sleep(3);
    CHECK_FALSE(fs::exists(marker));
}

TEST_CASE("a raised cancel flag kills the program and its children", "[subprocess]") {
    TempDir tmp;
    const std::string marker = tmp.path + "/child-survived";
    std::atomic<bool> cancel{false};
    std::thread raiser([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        cancel.store(true);
    });
    auto o = run_command({"/bin/sh", "-c", "(sleep 2; touch " + marker + ") & sleep 60"}, {}, 120, 1 << 20, &cancel);
    raiser.join();
    CHECK(o.cancelled);
    CHECK_FALSE(o.timed_out);
    CHECK(describe_outcome(o, 120) == "stopped: the agent is shutting down");
    CHECK(interpret_helper_answer(o, 120).kind == IssueResult::Kind::unreachable);
    ::sleep(3);
    CHECK_FALSE(fs::exists(marker));
}

TEST_CASE("output beyond the cap stops the program", "[subprocess]") {
    auto o = run_command({"/usr/bin/yes"}, {}, 10, 4096);
    CHECK(o.truncated);
    CHECK(o.out.size() == 4096);
}

TEST_CASE("a generation is in force only after the switch", "[store]") {
    TempDir tmp;
    IdentityStore store(tmp.path + "/web");
    REQUIRE(store.prepare().ok());
    CHECK_FALSE(store.current().has_value());
    CHECK(store.next_number() == 1);

    REQUIRE(store.write_generation({1, "web", "req-1", 100, "enroll"}, "CERT1\n", "", "REF1\n").ok());
    CHECK_FALSE(store.current().has_value());  // written, not switched: not in force
    REQUIRE(store.switch_to(1, 0).ok());
    auto cur = store.current();
    REQUIRE(cur);
    CHECK(cur->meta.number == 1);
    CHECK(cur->meta.key == "web");
    CHECK(cur->cert_pem == "CERT1\n");

    // A crash after writing generation 2 but before the switch: 1 stays in force, and the
    // torn generation is cleaned up.
    REQUIRE(store.write_generation({2, "web.2", "req-2", 200, "rekey"}, "CERT2\n", "CHAIN2\n", "REF2\n").ok());
    CHECK(store.current()->meta.number == 1);
    store.prune();
    CHECK_FALSE(fs::exists(tmp.path + "/web/gen-2"));
    CHECK(store.next_number() == 2);

    // A complete renewal: previous and current, files readable through `current`.
    REQUIRE(store.write_generation({2, "web.2", "req-2", 200, "rekey"}, "CERT2\n", "CHAIN2\n", "REF2\n").ok());
    REQUIRE(store.switch_to(2, 1).ok());
    CHECK(store.current()->meta.key == "web.2");
    CHECK(store.previous()->meta.number == 1);
    std::ifstream full(store.current_files().fullchain);
    std::string text((std::istreambuf_iterator<char>(full)), std::istreambuf_iterator<char>());
    CHECK(text == "CERT2\nCHAIN2\n");

    // Generations beyond current and previous go at the next prune; leftovers of an
    // interrupted symlink switch too.
    REQUIRE(store.write_generation({3, "web.2", "req-3", 300, "renew"}, "CERT3\n", "", "REF2\n").ok());
    REQUIRE(store.switch_to(3, 2).ok());
    REQUIRE(::symlink("gen-1", (tmp.path + "/web/current.tmp-1-2").c_str()) == 0);
    store.prune();
    CHECK_FALSE(fs::exists(tmp.path + "/web/gen-1"));
    CHECK(fs::exists(tmp.path + "/web/gen-2"));
    CHECK(fs::exists(tmp.path + "/web/gen-3"));
    CHECK_FALSE(fs::is_symlink(tmp.path + "/web/current.tmp-1-2"));
}

TEST_CASE("a generation without meta.json is not complete", "[store]") {
    TempDir tmp;
    IdentityStore store(tmp.path);
    REQUIRE(store.write_generation({1, "web", "r", 1, "enroll"}, "C\n", "", "R\n").ok());
    REQUIRE(store.switch_to(1, 0).ok());
    fs::remove(tmp.path + "/gen-1/meta.json");
    CHECK_FALSE(store.current().has_value());
}

TEST_CASE("identity state survives a round trip", "[state]") {
    TempDir tmp;
    const std::string path = tmp.path + "/state.json";
    auto fresh = load_state(path);
    REQUIRE(fresh.ok());
    CHECK(fresh->failures == 0);
    IdentityState s;
    s.last_attempt = {123, "rejected", "no"};
    s.failures = 4;
    s.next_attempt = 456;
    s.held = true;
    s.pending = PendingRequest{"id1", "web.2", true, "cookie", "CSR", 99};
    s.destroy.push_back({"web", 789});
    s.hooks_due = 2;
    s.hooks = {5, "failed", "hook x: exit code 1"};
    s.config_fingerprint = "abc";
    s.revoked = Revocation{"4B57", 321, "keyCompromise", "requested", "ab12"};
    s.retired = true;
    REQUIRE(save_state(path, s).ok());
    CHECK((fs::status(path).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
    auto back = load_state(path);
    REQUIRE(back.ok());
    CHECK(back->last_attempt.outcome == "rejected");
    CHECK(back->failures == 4);
    CHECK(back->next_attempt == 456);
    CHECK(back->held);
    REQUIRE(back->pending);
    CHECK(back->pending->cookie == "cookie");
    CHECK(back->pending->new_key);
    CHECK(back->destroy.size() == 1);
    CHECK(back->hooks_due == 2);
    CHECK(back->config_fingerprint == "abc");
    REQUIRE(back->revoked);
    CHECK(back->revoked->serial == "4B57");
    CHECK(back->revoked->time == 321);
    CHECK(back->revoked->reason == "keyCompromise");
    CHECK(back->revoked->source == "requested");
    CHECK(back->revoked->fingerprint == "ab12");
    CHECK(back->retired);
    REQUIRE(files::write_atomic(path, "{not json").ok());
    CHECK_FALSE(load_state(path).ok());
}
