// A small blocking HTTPS/1.1 client on OpenSSL: one connection per request, peer verified
// against a CA file (or the system store), host name or IP checked, SNI for names, a hard
// deadline for the whole exchange and size caps on what is read.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "agent/lifecycle/acme/http_message.hpp"
#include "core/result.hpp"

namespace keyward::acme {

struct HttpsOptions {
    std::string ca_file;  // empty: the system trust store
    std::chrono::milliseconds timeout{30000};
    HttpLimits limits;
    std::string user_agent = "keyward-acme/1";
};

struct HttpRequest {
    std::string method = "GET";
    std::string url;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

// Error codes say what the caller can do about it:
//   invalid_argument — our side is wrong (bad URL, unreadable ca_file, server not trusted);
//   timeout / connection_lost — transient (refused, reset, too slow);
//   protocol_error — the server answered something that is not a usable HTTP response.
Result<HttpResponse> https_request(const HttpRequest& request, const HttpsOptions& options);

}  // namespace keyward::acme
