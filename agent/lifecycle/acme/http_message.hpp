// The HTTP pieces the ACME flow reads, kept apart from the transport so that they can be fed
// garbage in unit tests: URLs (parsed by libcurl's own parser, the one the transport uses),
// the headers of an answer, Link relations and Retry-After.
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
    std::string scheme;             // lower case
    std::string host;               // lower case, without brackets for IPv6
    uint16_t port = 0;              // the scheme's default when the URL names none
    std::string target;             // path + query, at least "/"
    std::string authority() const;  // "host:port" for messages, IPv6 in brackets
};

// An absolute URL with one of `schemes`; no user info, no spaces or control characters.
Result<Url> parse_url(std::string_view text, std::initializer_list<std::string_view> schemes = {"https"});

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
    // Adds one raw header line ("Name: value\r\n"); false when it is not one.
    bool add_header_line(std::string_view line);
};

// Retry-After: delta-seconds or an HTTP-date; clamped to [0, 1 day]. nullopt if absent/garbage.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now);

}  // namespace keyward::acme
