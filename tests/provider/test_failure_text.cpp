// The messages users read on the OpenSSL error queue: they name keyward, the key and the cause.
#include <catch2/catch.hpp>

#include "provider/failure_text.hpp"

using keyward::ErrorCode;
using keyward::Status;
using keyward::provider::describe_failure;
using keyward::provider::Reason;

TEST_CASE("agent unreachable keeps the client's message with the socket path", "[failure]") {
    auto t = describe_failure({ErrorCode::agent_unreachable, "agent not reachable at /run/k.sock: Connection refused"},
                              "web", "signing", "/run/k.sock");
    CHECK(t.reason == Reason::agent_unreachable);
    CHECK(t.message == "keyward: agent not reachable at /run/k.sock: Connection refused (signing)");
    CHECK(describe_failure({ErrorCode::timeout, "x"}, "web", "", "/s").reason == Reason::agent_unreachable);
    CHECK(describe_failure({ErrorCode::connection_lost, "x"}, "web", "", "/s").reason == Reason::agent_unreachable);
}

TEST_CASE("denial and missing keys name the key", "[failure]") {
    auto denied =
        describe_failure({ErrorCode::access_denied, "uid 1000 may not use it"}, "web", "loading the key", "/s");
    CHECK(denied.reason == Reason::access_denied);
    CHECK(denied.message.rfind("keyward: access to key web denied (loading the key)", 0) == 0);
    auto missing = describe_failure({ErrorCode::no_such_key, "no such key: web"}, "web", "signing", "/run/k.sock");
    CHECK(missing.reason == Reason::no_such_key);
    CHECK(missing.message == "keyward: no such key web in the agent at /run/k.sock");
}

TEST_CASE("device and other agent errors keep the agent's words", "[failure]") {
    auto dev = describe_failure({ErrorCode::device_unavailable, "token removed"}, "web", "signing", "/s");
    CHECK(dev.reason == Reason::device_error);
    CHECK(dev.message == "keyward: key web: device error (signing): token removed");
    auto other = describe_failure({ErrorCode::busy, "queue full"}, "web", "", "/s");
    CHECK(other.reason == Reason::agent_error);
    CHECK(other.message == "keyward: key web: busy: queue full");
}
