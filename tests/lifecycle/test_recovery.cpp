// Reconciliation after a crash (docs/renewal.md, the two-phase swap), with a device of
// software keys and a CA in the test (fakes.hpp). A crash is the disk as it was at that
// moment: copied aside while the attempt runs (in the CA's or the device's call), or, for
// the moments inside the swap, that copy carried on by the store's own steps up to the
// crash point. A new lifecycle over it must find the old or the new identity whole, never
// a mix, and finish or undo what was cut short.
#include <catch2/catch.hpp>

#include <filesystem>

#include "agent/lifecycle/state.hpp"
#include "agent/lifecycle/store.hpp"
#include "core/durable_file.hpp"
#include "ipc/keyref.hpp"
#include "tests/lifecycle/fakes.hpp"

using namespace keyward;
using namespace keyward::lifecycle;
using namespace keyward::lifecycle::testing;
using Strings = std::vector<std::string>;
namespace fs = std::filesystem;

namespace {

// The rig's identity with a hook that appends the key in force to a log.
struct HookedRig : LifecycleRig {
    HookedRig() {
        extra_config = "hooks = [[\"/bin/sh\", \"-c\", \"echo \\\"$KEYWARD_KEY\\\" >> " + hook_log_path() + "\"]]\n";
    }
    std::string hook_log_path() const { return dir.path() + "/hooks.log"; }
    std::string hook_log() const {
        auto text = files::read_file(hook_log_path());
        return text.ok() ? text.value() : std::string();
    }
    std::string state_path() const { return identity_dir() + "/state.json"; }
    IdentityState state() const {
        auto st = load_state(state_path());
        REQUIRE(st.ok());
        return st.value();
    }
};

// Enrolls (key "web", generation 1), then starts a rekey and "kills" the agent while the CA
// works on it: the disk is put back as it was at that moment. The device keeps what it
// made, as a token does.
void crash_during_rekey(HookedRig& rig) {
    auto lc = rig.start();
    REQUIRE(renew(*lc)["result"]["action"] == "issued");
    rig.ca.script = {TestCa::Answer::unreachable};
    rig.ca.on_call = [&](const TestCa::Call&) { rig.snapshot(); };
    renew(*lc, true, true);
    rig.ca.on_call = nullptr;
    lc.reset();
    rig.restore();
}

enum class SwapStep { generation_written, intentions_recorded, switched };

// Carries the disk a crash during the CA's work left on through the swap's steps, as
// install does them for the CA's certificate, up to and including `last`.
void swap_until(HookedRig& rig, SwapStep last) {
    IdentityState st = rig.state();
    REQUIRE(st.pending);
    IdentityStore store(rig.identity_dir());
    const auto current = store.current();
    REQUIRE(current);
    auto cert = rig.ca.issue(st.pending->csr_pem);
    REQUIRE(cert.ok());
    GenerationMeta meta;
    meta.number = store.next_number();
    meta.key = st.pending->key;
    meta.request_id = st.pending->id;
    meta.created = rig.clock.now();
    meta.reason = "rekey";
    const std::string keyref = encode_key_reference_pem(KeyReference{meta.key, rig.keys.spki(meta.key)});
    REQUIRE(store.write_generation(meta, cert.value(), "", keyref).ok());
    if (last == SwapStep::generation_written) return;
    st.destroy.push_back({current->meta.key, rig.clock.now() + kGracePeriod});
    st.hooks_due = meta.number;
    REQUIRE(save_state(rig.state_path(), st).ok());
    if (last == SwapStep::intentions_recorded) return;
    REQUIRE(store.switch_to(meta.number, current->meta.number).ok());
}

}  // namespace

TEST_CASE("a crash while the CA works on a rekey: the old identity stays, the next attempt reuses the new key",
          "[recovery]") {
    HookedRig rig;
    crash_during_rekey(rig);
    // What the crash left: the new key made and recorded before the request went out.
    IdentityState st = rig.state();
    REQUIRE(st.pending);
    CHECK(st.pending->key == "web.2");
    CHECK(st.pending->new_key);
    CHECK(rig.keys.has("web.2"));

    auto lc = rig.start();
    lc->tick();
    auto view = show(*lc);
    CHECK(view["generation"] == 1);
    CHECK(view["key"] == "web");
    CHECK(require_consistent(rig) == "web");

    auto out = renew(*lc, true, true);
    CHECK(out["result"]["action"] == "issued");
    CHECK(out["key"] == "web.2");
    CHECK(rig.keys.generated == Strings{"web", "web.2"});  // no orphan: the key was reused
    CHECK(rig.keys.names() == Strings{"web", "web.2"});
    CHECK(keys_to_destroy(out) == Strings{"web"});
    CHECK(require_consistent(rig) == "web.2");
}

TEST_CASE("a crash before the new key was made: the next attempt makes it under the recorded name", "[recovery]") {
    HookedRig rig;
    auto lc = rig.start();
    REQUIRE(renew(*lc)["result"]["action"] == "issued");
    rig.keys.before_generate = [&](const std::string&) {
        rig.snapshot();
        return Status{ErrorCode::device_unavailable, "the agent died here"};
    };
    renew(*lc, true, true);
    rig.keys.before_generate = nullptr;
    lc.reset();
    rig.restore();
    IdentityState st = rig.state();
    REQUIRE(st.pending);
    CHECK(st.pending->key == "web.2");
    CHECK_FALSE(rig.keys.has("web.2"));

    lc = rig.start();
    lc->tick();
    CHECK(show(*lc)["generation"] == 1);
    CHECK(require_consistent(rig) == "web");
    auto out = renew(*lc, true, true);
    CHECK(out["result"]["action"] == "issued");
    CHECK(out["key"] == "web.2");
    CHECK(rig.keys.generated == Strings{"web", "web.2"});
    CHECK(require_consistent(rig) == "web.2");
}

TEST_CASE("a crash inside the key generation: its leftover is removed at start and the name used again",
          "[recovery][orphan]") {
    HookedRig rig;
    auto lc = rig.start();
    REQUIRE(renew(*lc)["result"]["action"] == "issued");
    rig.keys.before_generate = [&](const std::string& key) {
        rig.snapshot();
        rig.keys.orphans.insert(key);  // the public half made it to the token, the private one did not
        return Status{ErrorCode::device_unavailable, "the agent died here"};
    };
    renew(*lc, true, true);
    rig.keys.before_generate = nullptr;
    lc.reset();
    rig.restore();
    REQUIRE(rig.state().pending);
    REQUIRE(rig.keys.orphans.count("web.2"));

    lc = rig.start();
    lc->tick();
    CHECK(rig.keys.orphans_removed == Strings{"web.2"});
    auto out = renew(*lc, true, true);
    CHECK(out["result"]["action"] == "issued");
    CHECK(out["key"] == "web.2");
    CHECK(require_consistent(rig) == "web.2");
}

TEST_CASE("a crash after the new generation was written, before the switch: the old identity stays", "[recovery]") {
    HookedRig rig;
    crash_during_rekey(rig);
    swap_until(rig, SwapStep::generation_written);
    const std::string unswitched = rig.identity_dir() + "/gen-2";
    REQUIRE(fs::exists(unswitched + "/meta.json"));
    SECTION("complete") {}
    SECTION("torn: meta.json, written last, is missing") { fs::remove(unswitched + "/meta.json"); }

    auto lc = rig.start();
    lc->tick();
    CHECK_FALSE(fs::exists(unswitched));
    auto view = show(*lc);
    CHECK(view["generation"] == 1);
    CHECK(view["key"] == "web");
    CHECK(require_consistent(rig) == "web");
    CHECK(rig.hook_log() == "web\n");  // only the enrollment's

    auto out = renew(*lc, true, true);
    CHECK(out["result"]["action"] == "issued");
    CHECK(out["generation"] == 2);
    CHECK(out["key"] == "web.2");
    CHECK(rig.keys.generated == Strings{"web", "web.2"});
    CHECK(require_consistent(rig) == "web.2");
    CHECK(rig.hook_log() == "web\nweb.2\n");
}

TEST_CASE("a crash after the intentions were recorded, before the switch: none of them is acted on", "[recovery]") {
    HookedRig rig;
    crash_during_rekey(rig);
    swap_until(rig, SwapStep::intentions_recorded);

    auto lc = rig.start();
    lc->tick();
    auto view = show(*lc);
    CHECK(view["generation"] == 1);
    CHECK(view["key"] == "web");
    CHECK(keys_to_destroy(view).empty());  // the key in force is never destroyed
    CHECK(rig.hook_log() == "web\n");      // no hooks for a generation that never came into force
    CHECK(rig.state().hooks_due == 0);

    rig.clock.advance(kGracePeriod + 1);
    lc->tick();
    CHECK(rig.keys.has("web"));
    CHECK(rig.keys.destroyed.empty());
    CHECK(require_consistent(rig) == "web");
}

TEST_CASE("a crash after the switch, before the state said so: the new identity is recorded as in force",
          "[recovery]") {
    HookedRig rig;
    crash_during_rekey(rig);
    swap_until(rig, SwapStep::switched);
    CHECK(require_consistent(rig) == "web.2");

    auto lc = rig.start();
    lc->tick();
    auto view = show(*lc);
    CHECK(view["generation"] == 2);
    CHECK(view["key"] == "web.2");
    CHECK(view["previous"]["generation"] == 1);
    CHECK(view["pending"].is_null());
    CHECK(view["last_attempt"]["outcome"] == "issued");
    CHECK_THAT(view["last_attempt"]["message"].get<std::string>(), Catch::Contains("stopped before recording it"));
    CHECK(view["hooks"]["outcome"] == "ok");
    CHECK(rig.hook_log() == "web\nweb.2\n");  // the hooks the crash cut off ran, once
    CHECK(keys_to_destroy(view) == Strings{"web"});
    CHECK(require_consistent(rig) == "web.2");

    rig.clock.advance(kGracePeriod - 1);
    lc->tick();
    CHECK(rig.keys.has("web"));
    rig.clock.advance(2);
    lc->tick();
    CHECK(rig.keys.destroyed == Strings{"web"});
    CHECK(rig.hook_log() == "web\nweb.2\n");
    CHECK(require_consistent(rig) == "web.2");
}
