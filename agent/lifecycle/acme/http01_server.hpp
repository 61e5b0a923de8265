// The http-01 responder: a tiny HTTP/1.1 server on the configured address that answers
// GET /.well-known/acme-challenge/TOKEN with the key authorization, and 404 otherwise.
// It runs on its own thread only while an order is being validated, and serves several
// validators at once (a CA checks from more than one vantage point).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/result.hpp"

namespace keyward::acme {

class Http01Server {
public:
    // listen: "host:port" or "[v6]:port". Binds at once so that a busy port is a clear error.
    static Result<std::unique_ptr<Http01Server>> start(const std::string& listen);
    ~Http01Server();  // stops the thread, closes the socket
    Http01Server(const Http01Server&) = delete;
    Http01Server& operator=(const Http01Server&) = delete;

    void add(const std::string& token, const std::string& key_authorization);
    void remove(const std::string& token);
    unsigned requests_served() const;

    // Exposed for unit tests: the answer to one raw request (status line to body).
    std::string respond(std::string_view request);

private:
    Http01Server(int listen_fd, int wake_fd);
    void run();

    int listen_fd_;
    int wake_fd_;  // eventfd: written to stop the thread
    mutable std::mutex mutex_;
    std::map<std::string, std::string> tokens_;
    unsigned served_ = 0;
    std::thread thread_;
};

// Splits "host:port" / "[v6]:port"; false when malformed.
bool split_host_port(const std::string& text, std::string& host, uint16_t& port);

}  // namespace keyward::acme
