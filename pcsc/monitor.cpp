#include "pcsc/monitor.hpp"

#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "core/log.hpp"

namespace keyward::pcsc {

namespace {

constexpr const char* kPnpReader = "\\\\?PnP?\\Notification";
// A bounded wait, so a stop() that races the thread's entry into SCardGetStatusChange (where
// SCardCancel has nothing to cancel yet) still ends within this time.
constexpr DWORD kWaitMillis = 2000;

bool service_lost(LONG rv) {
    return rv == SCARD_E_NO_SERVICE || rv == SCARD_E_SERVICE_STOPPED || rv == SCARD_E_INVALID_HANDLE ||
           rv == SCARD_F_COMM_ERROR;
}

std::string pcsc_error(LONG rv) { return pcsc_stringify_error(rv); }

}  // namespace

struct Monitor::Context {
    SCARDCONTEXT handle = 0;
    ~Context() {
        if (handle != 0) SCardReleaseContext(handle);
    }
};

Monitor::Monitor(Callback on_event, MonitorOptions options) : on_event_(std::move(on_event)), options_(options) {}

Monitor::~Monitor() { stop(); }

void Monitor::start() {
    std::lock_guard lock(mu_);
    if (thread_.joinable()) return;
    stopping_ = false;
    thread_ = std::thread([this] { run(); });
}

void Monitor::stop() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
        if (active_context_ != 0) SCardCancel(active_context_);
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

std::map<std::string, ReaderEvent> Monitor::readers() const {
    std::lock_guard lock(mu_);
    return readers_;
}

std::optional<ReaderEvent> Monitor::reader(const std::string& name) const {
    std::lock_guard lock(mu_);
    auto it = readers_.find(name);
    if (it == readers_.end()) return std::nullopt;
    return it->second;
}

bool Monitor::service_up() const {
    std::lock_guard lock(mu_);
    return service_up_;
}

void Monitor::report(const ReaderEvent& ev) {
    {
        std::lock_guard lock(mu_);
        readers_[ev.reader] = ev;
    }
    if (on_event_) on_event_(ev);
}

void Monitor::report_service_lost(const std::string& why) {
    std::vector<std::string> affected;
    {
        std::lock_guard lock(mu_);
        bool was_up = service_up_;
        service_up_ = false;
        for (const auto& [name, ev] : readers_)
            if (ev.state != CardState::error || ev.detail != why) affected.push_back(name);
        if (was_up) log::warning("pcsc: lost pcscd (" + why + "); reconnecting");
    }
    for (const auto& name : affected) report(ReaderEvent{name, CardState::error, {}, why});
}

bool Monitor::sleep_unless_stopped(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    return !cv_.wait_for(lock, d, [this] { return stopping_; });
}

void Monitor::run() {
    auto backoff = options_.first_backoff;
    for (;;) {
        {
            std::lock_guard lock(mu_);
            if (stopping_) return;
        }
        Context ctx;
        LONG rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, nullptr, nullptr, &ctx.handle);
        if (rv != SCARD_S_SUCCESS) {
            ctx.handle = 0;
            report_service_lost("pcscd is not reachable: " + pcsc_error(rv));
        } else {
            {
                std::lock_guard lock(mu_);
                if (stopping_) return;
                active_context_ = ctx.handle;
            }
            bool healthy_start = watch(ctx);
            {
                std::lock_guard lock(mu_);
                active_context_ = 0;
                if (stopping_) return;
            }
            if (healthy_start) backoff = options_.first_backoff;
        }
        if (!sleep_unless_stopped(backoff)) return;
        backoff = std::min(backoff * 2, options_.max_backoff);
    }
}

// Returns true when the context worked for a while (the backoff starts over), false when
// it failed at once.
bool Monitor::watch(Context& ctx) {
    bool listed_once = false;
    for (;;) {
        // The reader list, then a wait on every reader plus the PnP pseudo-reader until
        // something changes; a change of the reader list starts over from a new list.
        std::vector<char> names;
        DWORD len = 0;
        LONG rv = SCardListReaders(ctx.handle, nullptr, nullptr, &len);
        if (rv == SCARD_S_SUCCESS && len > 0) {
            names.resize(len);
            rv = SCardListReaders(ctx.handle, nullptr, names.data(), &len);
            names.resize(rv == SCARD_S_SUCCESS ? len : 0);
        }
        if (rv != SCARD_S_SUCCESS && rv != SCARD_E_NO_READERS_AVAILABLE) {
            report_service_lost("listing readers failed: " + pcsc_error(rv));
            return listed_once;
        }
        std::vector<std::string> readers = split_reader_list(std::string_view(names.data(), names.size()));
        {
            std::lock_guard lock(mu_);
            if (!service_up_) log::info("pcsc: connected to pcscd, " + std::to_string(readers.size()) + " reader(s)");
            service_up_ = true;
        }
        listed_once = true;
        for (const auto& [name, ev] : this->readers()) {
            if (std::find(readers.begin(), readers.end(), name) == readers.end() &&
                !(ev.state == CardState::error && ev.detail == "the reader is gone"))
                report(ReaderEvent{name, CardState::error, {}, "the reader is gone"});
        }

        std::vector<SCARD_READERSTATE> states(readers.size() + 1);
        for (size_t i = 0; i < readers.size(); ++i) {
            states[i].szReader = readers[i].c_str();
            states[i].dwCurrentState = SCARD_STATE_UNAWARE;
        }
        states.back().szReader = kPnpReader;
        states.back().dwCurrentState = SCARD_STATE_UNAWARE;
        std::vector<std::optional<ReaderEvent>> known(readers.size());
        for (size_t i = 0; i < readers.size(); ++i) known[i] = reader(readers[i]);

        bool relist = false;
        while (!relist) {
            {
                std::lock_guard lock(mu_);
                if (stopping_) return true;
            }
            rv = SCardGetStatusChange(ctx.handle, kWaitMillis, states.data(), static_cast<DWORD>(states.size()));
            if (rv == SCARD_E_TIMEOUT) continue;
            if (rv == SCARD_E_CANCELLED) return true;
            if (rv == SCARD_E_UNKNOWN_READER) break;  // a reader went between listing and waiting
            if (rv != SCARD_S_SUCCESS) {
                report_service_lost(service_lost(rv) ? "pcscd stopped: " + pcsc_error(rv)
                                                     : "waiting for card events failed: " + pcsc_error(rv));
                return true;
            }
            for (size_t i = 0; i < readers.size(); ++i) {
                SCARD_READERSTATE& st = states[i];
                if (!(st.dwEventState & SCARD_STATE_CHANGED) && known[i]) continue;
                auto ev = interpret(readers[i], known[i], static_cast<uint32_t>(st.dwCurrentState),
                                    static_cast<uint32_t>(st.dwEventState), st.rgbAtr, st.cbAtr);
                st.dwCurrentState = st.dwEventState & ~SCARD_STATE_CHANGED;
                if (ev) {
                    known[i] = *ev;
                    report(*ev);
                }
            }
            SCARD_READERSTATE& pnp = states.back();
            if (pnp.dwEventState & SCARD_STATE_CHANGED) {
                relist = pnp.dwCurrentState != SCARD_STATE_UNAWARE;  // the first answer only gives the count
                pnp.dwCurrentState = pnp.dwEventState & ~SCARD_STATE_CHANGED;
            }
        }
    }
}

}  // namespace keyward::pcsc
