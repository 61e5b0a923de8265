// Watches PC/SC readers and cards (pcsc-lite) on a thread of its own and reports, per
// reader, a card present (with its ATR), removed, or an error (reader gone, pcscd
// unreachable). Readers that appear later are picked up through the `\\?PnP?\Notification`
// pseudo-reader. When pcscd goes away (SCARD_E_NO_SERVICE, SCARD_E_SERVICE_STOPPED) every
// known reader is reported as an error and the context is established again with a capped
// backoff; the readers' real states are reported again once pcscd is back.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "pcsc/reader_state.hpp"

namespace keyward::pcsc {

struct MonitorOptions {
    std::chrono::milliseconds first_backoff{100};
    std::chrono::milliseconds max_backoff{2000};
};

class Monitor {
public:
    // `on_event` runs on the monitor's thread, once per change, never concurrently with
    // itself; it must not block for long (it delays the next event) and must not throw.
    using Callback = std::function<void(const ReaderEvent&)>;

    explicit Monitor(Callback on_event, MonitorOptions options = {});
    ~Monitor();  // stop()
    Monitor(const Monitor&) = delete;
    Monitor& operator=(const Monitor&) = delete;

    void start();
    // Wakes the thread (SCardCancel on its context) and joins it. Idempotent.
    void stop();

    // The last state reported for each reader seen so far.
    std::map<std::string, ReaderEvent> readers() const;
    std::optional<ReaderEvent> reader(const std::string& name) const;
    bool service_up() const;

private:
    struct Context;
    void run();
    bool watch(Context& ctx);  // false: pcscd went away
    void report(const ReaderEvent& ev);
    void report_service_lost(const std::string& why);
    bool sleep_unless_stopped(std::chrono::milliseconds d);

    Callback on_event_;
    MonitorOptions options_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool stopping_ = false;
    bool service_up_ = false;
    long active_context_ = 0;  // SCARDCONTEXT of the running watch, 0 when none (for SCardCancel)
    std::map<std::string, ReaderEvent> readers_;
    std::thread thread_;
};

}  // namespace keyward::pcsc
