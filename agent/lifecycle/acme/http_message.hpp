// HTTP/1.1 pieces the ACME client needs, kept apart from the sockets so that every parser
// can be fed truncated, garbage and oversized input in unit tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace keyward::acme {

struct Url {
    std::string scheme;  // "https" (lower case)
    std::string host;    // without brackets for IPv6
    uint16_t port = 443;
    std::string target;  // path + query, at least "/"
    bool host_is_ip = false;
    std::string authority() const;  // Host header value
};

// Absolute https URL only (ACME requires TLS); no user info, no fragment.
Result<Url> parse_url(std::string_view text);

struct HttpLimits {
    size_t max_header_bytes = 64 * 1024;
    size_t max_body_bytes = 1024 * 1024;
};

struct HttpResponse {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
    std::string body;
    // First value of a header (name in any case).
    std::optional<std::string> header(std::string_view name) const;
    // Every "Link: <url>;rel=..." target with that relation.
    std::vector<std::string> links(std::string_view rel) const;
};

struct HttpParse {
    enum class State { incomplete, complete, error };
    State state = State::incomplete;
    HttpResponse response;
    std::string error;  // for `error`: what is wrong, for people
};

// Parses the bytes of one response received so far. `eof`: the peer closed, nothing more
// will come. Handles Content-Length, chunked transfer coding, read-until-close bodies,
// interim 1xx responses, and bodiless statuses (204, 304).
HttpParse parse_http_response(std::string_view data, bool eof, const HttpLimits& limits = {});

// Retry-After: delta-seconds or an HTTP-date; clamped to [0, 1 day]. nullopt if absent/garbage.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now);

}  // namespace keyward::acme
