// One attempt through the lifecycle, with a device of software keys and a CA in the test
// (fakes.hpp): enrollment, renewal on schedule, the CA's answers (rejected, pending,
// garbage, a certificate for another key, unreachable), rekey, the grace period, rollback.
#include <catch2/catch.hpp>

#include "pki/certificates.hpp"
#include "tests/lifecycle/fakes.hpp"

using namespace keyward;
using namespace keyward::lifecycle;
using namespace keyward::lifecycle::testing;
using Strings = std::vector<std::string>;

constexpr int64_t kDay = 86400;

TEST_CASE("an enrollment makes the key, signs the request on the device and installs a certificate that validates",
          "[attempt]") {
    LifecycleRig rig;
    auto lc = rig.start();
    CHECK(show(*lc)["status"] == "not enrolled");

    auto out = renew(*lc);
    CHECK(out["result"]["action"] == "issued");
    CHECK(out["status"] == "valid");
    CHECK(out["generation"] == 1);
    CHECK(out["key"] == "web");
    CHECK(out["last_attempt"]["outcome"] == "issued");
    CHECK(rig.keys.generated == Strings{"web"});

    REQUIRE(rig.ca.calls.size() == 1);
    const auto& call = rig.ca.calls[0];
    CHECK(call.operation == "submit");
    CHECK(call.key == "web");
    CHECK(call.current_cert_pem.empty());
    CHECK(csr_spki(call.csr_pem) == rig.keys.spki("web"));
    // The request was signed once, on the device, with the curve's own scheme (the CA checked
    // that signature before issuing).
    REQUIRE(rig.keys.signatures.size() == 1);
    CHECK(rig.keys.signatures[0].key == "web");
    CHECK(rig.keys.signatures[0].scheme == Scheme::ecdsa_secp256r1_sha256);

    CHECK(require_consistent(rig) == "web");
    auto info = pki::describe_pem(rig.current_file("cert.pem"));
    REQUIRE(info.ok());
    CHECK(info->subject == "/CN=web.example");
    CHECK(info->sans == Strings{"dns:web.example"});
    CHECK(info->client_auth);
}

TEST_CASE("an RSA identity's request is signed on the device with PKCS#1 v1.5", "[attempt]") {
    LifecycleRig rig("key_type = \"rsa-2048\"\n");
    auto lc = rig.start();
    CHECK(renew(*lc)["result"]["action"] == "issued");
    REQUIRE(rig.keys.signatures.size() == 1);
    CHECK(rig.keys.signatures[0].scheme == Scheme::rsa_pkcs1_sha256);
    CHECK(require_consistent(rig) == "web");
}

TEST_CASE("a renewal on schedule keeps the key and replaces the certificate", "[attempt]") {
    LifecycleRig rig;
    auto lc = rig.start();
    REQUIRE(renew(*lc)["result"]["action"] == "issued");
    const std::string first = rig.current_file("cert.pem");

    // 30-day certificates, renewed at 2/3 of their lifetime, no jitter: due after 20 days.
    rig.clock.advance(19 * kDay);
    lc->tick();
    CHECK(rig.ca.calls.size() == 1);
    CHECK(renew(*lc)["result"]["action"] == "not_due");
    CHECK(rig.ca.calls.size() == 1);

    rig.clock.advance(kDay);
    lc->tick();
    REQUIRE(rig.ca.calls.size() == 2);
    CHECK(rig.ca.calls[1].key == "web");
    CHECK(rig.ca.calls[1].current_key == "web");
    CHECK(rig.ca.calls[1].current_cert_pem == first);
    auto view = show(*lc);
    CHECK(view["generation"] == 2);
    CHECK(view["previous"]["generation"] == 1);
    CHECK(keys_to_destroy(view).empty());
    CHECK(rig.keys.generated == Strings{"web"});
    CHECK(rig.current_file("cert.pem") != first);
    CHECK(require_consistent(rig) == "web");
}

TEST_CASE("a rejected answer keeps the certificate in force and holds the identity", "[attempt]") {
    LifecycleRig rig;
    auto lc = rig.start();
    REQUIRE(renew(*lc)["result"]["action"] == "issued");
    const std::string first = rig.current_file("cert.pem");

    rig.ca.script = {TestCa::Answer::reject};
    rig.clock.advance(20 * kDay);  // due
    lc->tick();
    auto out = show(*lc);
    CHECK(out["last_attempt"]["outcome"] == "rejected");
    CHECK(out["held"] == true);
    CHECK(out["failures"] == 1);
    CHECK(out["status"] == "renewal failing");
    CHECK(out["generation"] == 1);
    CHECK(rig.current_file("cert.pem") == first);
    CHECK(require_consistent(rig) == "web");

    // Held for retry_max (6h by default, 80-100% of it), not retried in a loop.
    const int64_t hold = out["next_renewal_unix"].get<int64_t>() - rig.clock.now();
    CHECK(hold >= 6 * 3600 * 8 / 10);
    CHECK(hold <= 6 * 3600);
    rig.clock.advance(3600);
    lc->tick();
    CHECK(rig.ca.calls.size() == 2);
    rig.clock.advance(hold - 3600);
    lc->tick();
    CHECK(rig.ca.calls.size() == 3);
    CHECK(show(*lc)["generation"] == 2);
}

TEST_CASE("a pending answer is polled with its cookie when the CA said, also after a restart", "[attempt]") {
    LifecycleRig rig;
    rig.ca.script = {TestCa::Answer::pending};
    rig.ca.pending_cookie = "ticket-7";
    rig.ca.pending_retry_after = 300;
    auto lc = rig.start();

    auto out = renew(*lc);
    CHECK(out["result"]["action"] == "pending");
    CHECK(out["status"] == "enrolling");
    CHECK(out["pending"]["key"] == "web");
    CHECK(out["generation"].is_null());
    CHECK(out["next_renewal_unix"] == rig.clock.now() + 300);

    rig.clock.advance(100);
    lc->tick();
    CHECK(rig.ca.calls.size() == 1);

    lc = rig.start();  // the agent restarts while the CA works
    rig.clock.advance(200);
    lc->tick();
    REQUIRE(rig.ca.calls.size() == 2);
    const auto& poll = rig.ca.calls[1];
    CHECK(poll.operation == "poll");
    CHECK(poll.cookie == "ticket-7");
    CHECK(poll.key == "web");
    CHECK(poll.csr_pem == rig.ca.calls[0].csr_pem);

    out = show(*lc);
    CHECK(out["generation"] == 1);
    CHECK(out["pending"].is_null());
    CHECK(rig.keys.generated == Strings{"web"});
    CHECK(require_consistent(rig) == "web");
}

TEST_CASE("an answer that fails validation keeps the certificate in force and backs off", "[attempt]") {
    LifecycleRig rig;
    auto lc = rig.start();
    REQUIRE(renew(*lc)["result"]["action"] == "issued");
    const std::string first = rig.current_file("cert.pem");

    rig.ca.script = {TestCa::Answer::garbage, TestCa::Answer::wrong_key};
    rig.clock.advance(20 * kDay);  // due
    lc->tick();
    auto out = show(*lc);
    CHECK(out["last_attempt"]["outcome"] == "invalid");
    CHECK_THAT(out["last_attempt"]["message"].get<std::string>(), Catch::Contains("the CA's certificate was refused"));
    CHECK(out["held"] == false);
    CHECK(out["failures"] == 1);
    const int64_t first_backoff = out["next_renewal_unix"].get<int64_t>() - rig.clock.now();
    CHECK(first_backoff >= 48);  // retry_min (1m), 80-100% of it
    CHECK(first_backoff <= 60);

    rig.clock.advance(first_backoff);
    lc->tick();
    out = show(*lc);
    CHECK(out["last_attempt"]["outcome"] == "invalid");
    CHECK_THAT(out["last_attempt"]["message"].get<std::string>(), Catch::Contains("for another key"));
    CHECK(out["failures"] == 2);
    const int64_t second_backoff = out["next_renewal_unix"].get<int64_t>() - rig.clock.now();
    CHECK(second_backoff >= 96);  // doubled
    CHECK(second_backoff <= 120);

    CHECK(out["generation"] == 1);
    CHECK(rig.current_file("cert.pem") == first);
    CHECK(require_consistent(rig) == "web");
}

TEST_CASE("a rekey makes a new key; the old one is destroyed only after the grace period", "[attempt]") {
    LifecycleRig rig;
    auto lc = rig.start();
    REQUIRE(renew(*lc)["result"]["action"] == "issued");
    const std::string first = rig.current_file("cert.pem");

    auto out = renew(*lc, true, true);
    CHECK(out["result"]["action"] == "issued");
    CHECK(out["generation"] == 2);
    CHECK(out["key"] == "web.2");
    CHECK(rig.keys.generated == Strings{"web", "web.2"});
    REQUIRE(rig.ca.calls.size() == 2);
    // Renewal authenticated by the identity in force, for the new key.
    CHECK(rig.ca.calls[1].current_key == "web");
    CHECK(rig.ca.calls[1].current_cert_pem == first);
    CHECK(csr_spki(rig.ca.calls[1].csr_pem) == rig.keys.spki("web.2"));
    CHECK(require_consistent(rig) == "web.2");
    CHECK(keys_to_destroy(out) == Strings{"web"});

    rig.clock.advance(kGracePeriod - 1);
    lc->tick();
    CHECK(rig.keys.has("web"));
    rig.clock.advance(2);
    lc->tick();
    CHECK_FALSE(rig.keys.has("web"));
    CHECK(rig.keys.destroyed == Strings{"web"});
    CHECK(keys_to_destroy(show(*lc)).empty());
    CHECK(require_consistent(rig) == "web.2");

    // Nothing left to roll back to.
    auto back = lc->rollback("web");
    REQUIRE_FALSE(back.ok());
    CHECK_THAT(back.status().message, Catch::Contains("no longer exists"));
}

TEST_CASE("a rollback within the grace period brings the old key back and dooms the new one", "[attempt]") {
    LifecycleRig rig;
    auto lc = rig.start();
    REQUIRE(renew(*lc)["result"]["action"] == "issued");
    REQUIRE(renew(*lc, true, true)["result"]["action"] == "issued");

    auto out = json_of(lc->rollback("web"));
    CHECK(out["generation"] == 1);
    CHECK(out["key"] == "web");
    CHECK(out["last_attempt"]["outcome"] == "rollback");
    CHECK(out["held"] == true);
    CHECK(keys_to_destroy(out) == Strings{"web.2"});
    CHECK(require_consistent(rig) == "web");

    rig.clock.advance(kGracePeriod + 1);
    lc->tick();
    CHECK(rig.keys.destroyed == Strings{"web.2"});
    CHECK(rig.keys.has("web"));
    CHECK(require_consistent(rig) == "web");
}

TEST_CASE("a rekey that failed keeps its new key for the next attempt", "[attempt]") {
    LifecycleRig rig;
    auto lc = rig.start();
    REQUIRE(renew(*lc)["result"]["action"] == "issued");

    rig.ca.script = {TestCa::Answer::unreachable};
    auto out = renew(*lc, true, true);
    CHECK(out["result"]["action"] == "failed");
    CHECK(out["last_attempt"]["outcome"] == "unreachable");
    CHECK(out["generation"] == 1);
    CHECK(rig.keys.generated == Strings{"web", "web.2"});
    CHECK(require_consistent(rig) == "web");

    out = renew(*lc, true, true);
    CHECK(out["result"]["action"] == "issued");
    CHECK(out["key"] == "web.2");
    CHECK(rig.keys.generated == Strings{"web", "web.2"});
    CHECK(require_consistent(rig) == "web.2");
}

TEST_CASE("objects left by interrupted generations do not block rekeys: the name is used again", "[attempt][orphan]") {
    LifecycleRig rig;
    auto lc = rig.start();
    REQUIRE(renew(*lc)["result"]["action"] == "issued");
    // More leftovers under the next names than the five other names a rekey would try.
    for (const char* n : {"web.2", "web.2-2", "web.2-3", "web.2-4", "web.2-5", "web.2-6"}) rig.keys.orphans.insert(n);

    auto out = renew(*lc, true, true);
    CHECK(out["result"]["action"] == "issued");
    CHECK(out["key"] == "web.2");
    CHECK(rig.keys.orphans_removed == Strings{"web.2"});
    CHECK(require_consistent(rig) == "web.2");
}

TEST_CASE("a replaced key the agent no longer lists is still removed from the device", "[attempt][orphan]") {
    LifecycleRig rig;
    auto lc = rig.start();
    REQUIRE(renew(*lc)["result"]["action"] == "issued");
    REQUIRE(renew(*lc, true, true)["result"]["action"] == "issued");
    // The private half went some other way; its public half stays on the token.
    REQUIRE(rig.keys.access().destroy("web").ok());
    rig.keys.orphans.insert("web");

    rig.clock.advance(kGracePeriod + 1);
    lc->tick();
    CHECK(rig.keys.orphans_removed == Strings{"web"});
    CHECK(keys_to_destroy(show(*lc)).empty());
}

TEST_CASE("an issuer that cannot revoke: revoke and retire fail and change nothing", "[attempt][revoke]") {
    LifecycleRig rig;
    auto lc = rig.start();
    REQUIRE(renew(*lc)["result"]["action"] == "issued");
    for (bool retire : {false, true}) {
        auto out = lc->revoke({"web", "keyCompromise", retire});
        REQUIRE_FALSE(out.ok());
        CHECK_THAT(out.status().message, Catch::Contains("cannot revoke"));
        CHECK(show(*lc)["status"] == "valid");
        CHECK(require_consistent(rig) == "web");
    }
    auto bad = lc->revoke({"web", "because", false});
    REQUIRE_FALSE(bad.ok());
    CHECK_THAT(bad.status().message, Catch::Contains("unknown revocation reason"));
    CHECK(rig.keys.destroyed.empty());
}
