// What the agent's PC/SC monitor knows about the reader a card token lives in, shared with
// that token's backend: a removed card fails its keys at once with a message naming the
// reader, without a device call (no hang, no retry storm), and a card that came back makes
// the backend drop its sessions, check the card is the same one (token serial) and log in
// again. pkcs11/ does not know PC/SC; the agent writes here, the backend reads.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

namespace keyward::pkcs11 {

class CardPresence {
public:
    enum class State { unknown, present, removed, unreachable };
    struct View {
        State state = State::unknown;
        uint64_t epoch = 0;   // moves on every change: a backend that saw another epoch re-checks the card
        std::string message;  // for removed / unreachable: what a signature answers
    };

    explicit CardPresence(std::string reader) : reader_(std::move(reader)) {}

    const std::string& reader() const noexcept { return reader_; }

    // From the monitor's thread.
    // Every "present" is a new look at the card (it may have been swapped between two polls).
    void set_present() { set(State::present, {}, true); }
    void set_removed() { set(State::removed, "the card in reader " + reader_ + " was removed"); }
    void set_unreachable(const std::string& why) {
        set(State::unreachable, "the card reader " + reader_ + " is not reachable: " + why);
    }

    View view() const {
        std::lock_guard lock(mu_);
        return view_;
    }

    // The backend's hook, run (outside the lock) after each change; set once, before events.
    void on_change(std::function<void(const View&)> hook) {
        std::lock_guard lock(mu_);
        hook_ = std::move(hook);
    }

private:
    void set(State s, std::string message, bool always = false) {
        View now;
        std::function<void(const View&)> hook;
        {
            std::lock_guard lock(mu_);
            if (!always && view_.state == s && view_.message == message) return;
            view_.state = s;
            view_.message = std::move(message);
            ++view_.epoch;
            now = view_;
            hook = hook_;
        }
        if (hook) hook(now);
    }

    const std::string reader_;
    mutable std::mutex mu_;
    View view_;
    std::function<void(const View&)> hook_;
};

}  // namespace keyward::pkcs11
