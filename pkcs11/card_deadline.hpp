// A card that stops answering must not hold its callers (docs/smartcard.md, "A card that
// stops answering"). PKCS#11 cannot cancel a call, so a card token's device calls run on a
// thread of their own and the caller waits at most `timeout` for the answer: past it the
// caller gets "the card in reader R did not answer within 15 s", the stuck call stays where
// it is, and until it returns every other call fails at once with the same message (no
// queue of calls piling up behind a dead card). When it returns, the card is used again.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "core/key_backend.hpp"

namespace keyward::pkcs11 {

struct CardDeadline {
    std::string card;  // for messages: "the card in reader R"
    std::chrono::milliseconds timeout{15000};
    // Both run outside the backend's locks. on_stuck runs on the caller's thread, right
    // after a call missed the deadline; on_answering on the card's thread, after the stuck
    // call returned (and may run after the backend is gone: capture nothing it owns).
    std::function<void()> on_stuck;
    std::function<void()> on_answering;
};

// Wraps `inner` (one call at a time reaches it, in the order asked). Calls that need no
// device (kind, description, max_concurrency) go straight to it.
std::unique_ptr<KeyBackend> with_card_deadline(std::unique_ptr<KeyBackend> inner, CardDeadline deadline);

// "15 s", "1.5 s": how a deadline is said in messages.
std::string deadline_text(std::chrono::milliseconds timeout);

}  // namespace keyward::pkcs11
