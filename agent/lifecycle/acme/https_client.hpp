// The ACME transport: HTTPS on libcurl. One HttpsClient per ACME attempt holds one curl easy
// handle, so the TLS connection to the CA is kept and reused from request to request. The
// peer is verified against ca_file (or the system store), TLS 1.2 at least; every request
// has a hard deadline and size caps; a raised cancel flag aborts a request in flight.
//
// Proxies: an explicit `proxy` is used with the explicit `no_proxy` only (the environment's
// no_proxy does not apply to it). Without one, libcurl's environment rules hold:
// https_proxy / HTTPS_PROXY / all_proxy, minus no_proxy / NO_PROXY (or the explicit `no_proxy`).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/lifecycle/acme/http_message.hpp"
#include "agent/lifecycle/cancel.hpp"
#include "core/result.hpp"

namespace keyward::acme {

struct HttpsOptions {
    std::string ca_file;  // empty: the system trust store
    HttpLimits limits;
    std::string user_agent = "keyward-acme/1";
    std::optional<std::string> proxy;     // "http://host:port"
    std::optional<std::string> no_proxy;  // curl's list: "host,.domain,10.0.0.0/8" or "*"
    const lifecycle::CancelFlag* cancel = nullptr;
};

struct HttpRequest {
    std::string method = "GET";
    std::string url;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

class HttpsClient {
public:
    explicit HttpsClient(HttpsOptions options);
    ~HttpsClient();
    HttpsClient(const HttpsClient&) = delete;
    HttpsClient& operator=(const HttpsClient&) = delete;

    // Any HTTP status is a success here: the caller judges it. Error codes say what the
    // caller can do about it:
    //   invalid_argument — our side is wrong (bad URL, unreadable ca_file, server not
    //                      trusted, proxy wants credentials);
    //   timeout / connection_lost — transient (refused, reset, too slow, proxy down);
    //   protocol_error — the server answered something that is not a usable HTTP response.
    // A raised cancel flag ends the request as connection_lost, "interrupted: ...".
    Result<HttpResponse> request(const HttpRequest& request, std::chrono::milliseconds timeout);

    // TCP connections opened so far (1 when every request reused the first).
    long connections_opened() const { return connections_; }

private:
    struct Transfer;
    HttpsOptions options_;
    std::unique_ptr<void, void (*)(void*)> curl_;
    long connections_ = 0;
};

}  // namespace keyward::acme
