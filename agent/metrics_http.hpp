// Serves the metrics (agent/metrics.hpp) on a thread of its own: a minimal HTTP/1.1
// server for `GET /metrics` (metrics_listen) and a node_exporter textfile rewritten
// atomically every interval and soon after a change (metrics_file). Off the event loop so
// a scrape never delays a signature.
//
// Scrapers may be slow or hostile: a request head is at most 8 KiB and must arrive within
// 5 s, an answer must be taken within 10 s, at most 16 clients at once (more wait in the
// listen backlog); every connection closes after one answer.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "core/result.hpp"
#include "core/unique_fd.hpp"

namespace keyward::agent::metrics {

inline constexpr size_t kMaxRequestHead = 8192;
inline constexpr size_t kMaxClients = 16;
inline constexpr std::chrono::seconds kRequestTimeout{5};
inline constexpr std::chrono::seconds kAnswerTimeout{10};

struct ServiceConfig {
    std::string listen;  // "HOST:PORT" ("[::1]:9813" for IPv6); empty: no endpoint
    std::string file;    // textfile path; empty: none
    std::chrono::seconds interval{15};
};

// Splits "HOST:PORT" / "[V6]:PORT" with a numeric host; the error says what is expected.
Result<std::pair<std::string, std::string>> split_listen(const std::string& listen);

class Service {
public:
    // `render` is called on the service's thread for each scrape and file write.
    using RenderFn = std::function<std::string()>;

    // Binds the endpoint (errors name the address) and starts the thread.
    static Result<std::unique_ptr<Service>> start(const ServiceConfig& config, RenderFn render);
    ~Service();
    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;

    // From any thread: rewrite the textfile soon (a value changed).
    void poke() noexcept;
    // The bound port (for tests that listen on port 0).
    int port() const { return port_; }

private:
    Service(ServiceConfig config, RenderFn render) : config_(std::move(config)), render_(std::move(render)) {}
    void run();
    void write_file();

    ServiceConfig config_;
    RenderFn render_;
    UniqueFd listen_fd_;
    UniqueFd wake_fd_;  // eventfd: poke() and stop
    int port_ = 0;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> dirty_{false};
    std::thread thread_;
};

}  // namespace keyward::agent::metrics
