#include "agent/lifecycle/acme/http_message.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <ctime>

namespace keyward::acme {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

HttpParse fail(std::string message) {
    HttpParse p;
    p.state = HttpParse::State::error;
    p.error = std::move(message);
    return p;
}

// Decodes a chunked body starting at `data`. Returns complete/incomplete/error; on
// complete, `body` holds the payload.
HttpParse::State decode_chunked(std::string_view data, bool eof, size_t max_body, std::string& body,
                                std::string& error) {
    body.clear();
    size_t pos = 0;
    for (;;) {
        size_t eol = data.find("\r\n", pos);
        if (eol == std::string_view::npos) {
            if (data.size() - pos > 1024) {
                error = "chunk size line too long";
                return HttpParse::State::error;
            }
            if (eof) error = "truncated chunked body";
            return eof ? HttpParse::State::error : HttpParse::State::incomplete;
        }
        std::string_view line = data.substr(pos, eol - pos);
        size_t semi = line.find(';');
        std::string_view hex = trim(line.substr(0, semi));
        if (hex.empty() || hex.size() > 8) {
            error = "bad chunk size";
            return HttpParse::State::error;
        }
        size_t size = 0;
        auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), size, 16);
        if (ec != std::errc() || end != hex.data() + hex.size()) {
            error = "bad chunk size";
            return HttpParse::State::error;
        }
        pos = eol + 2;
        if (size == 0) {
            // Trailer section: header lines until an empty line.
            for (;;) {
                size_t t = data.find("\r\n", pos);
                if (t == std::string_view::npos) {
                    if (eof) error = "truncated chunked trailer";
                    return eof ? HttpParse::State::error : HttpParse::State::incomplete;
                }
                if (t == pos) return HttpParse::State::complete;
                if (t - pos > 8192) {
                    error = "chunked trailer too long";
                    return HttpParse::State::error;
                }
                pos = t + 2;
            }
        }
        if (body.size() + size > max_body) {
            error = "response body larger than " + std::to_string(max_body) + " bytes";
            return HttpParse::State::error;
        }
        if (data.size() - pos < size + 2) {
            if (eof) error = "truncated chunked body";
            return eof ? HttpParse::State::error : HttpParse::State::incomplete;
        }
        if (data.substr(pos + size, 2) != "\r\n") {
            error = "chunk not followed by CRLF";
            return HttpParse::State::error;
        }
        body.append(data.substr(pos, size));
        pos += size + 2;
    }
}

}  // namespace

std::string Url::authority() const {
    std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    return port == 443 ? h : h + ":" + std::to_string(port);
}

Result<Url> parse_url(std::string_view text) {
    auto bad = [&](const std::string& why) {
        return Status{ErrorCode::invalid_argument, "URL \"" + std::string(text.substr(0, 200)) + "\": " + why};
    };
    if (text.size() > 2048) return bad("too long");
    for (char c : text)
        if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
            return bad("contains spaces or control characters");
    size_t colon = text.find("://");
    if (colon == std::string_view::npos) return bad("not an absolute URL");
    Url url;
    url.scheme = lower(text.substr(0, colon));
    if (url.scheme != "https") return bad("only https is allowed");
    std::string_view rest = text.substr(colon + 3);
    size_t slash = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, slash);
    std::string_view target = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
    if (!target.empty() && target.front() == '#') target = "/";
    if (size_t hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
    if (!target.empty() && target.front() == '?') url.target = "/" + std::string(target);
    else url.target = std::string(target);
    if (authority.find('@') != std::string_view::npos) return bad("user info is not allowed");
    std::string_view host_part = authority;
    std::string_view port_part;
    if (!authority.empty() && authority.front() == '[') {
        size_t close = authority.find(']');
        if (close == std::string_view::npos) return bad("unterminated IPv6 address");
        url.host = std::string(authority.substr(1, close - 1));
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return bad("garbage after the IPv6 address");
            port_part = after.substr(1);
        }
        in6_addr a6{};
        if (inet_pton(AF_INET6, url.host.c_str(), &a6) != 1) return bad("bad IPv6 address");
        url.host_is_ip = true;
    } else {
        size_t c = authority.rfind(':');
        if (c != std::string_view::npos) {
            host_part = authority.substr(0, c);
            port_part = authority.substr(c + 1);
        }
        url.host = lower(host_part);
        in_addr a4{};
        url.host_is_ip = inet_pton(AF_INET, url.host.c_str(), &a4) == 1;
    }
    if (url.host.empty()) return bad("no host");
    if (!port_part.empty() || authority.find(':') != std::string_view::npos) {
        if (!all_digits(port_part) || port_part.size() > 5) return bad("bad port");
        unsigned port = 0;
        std::from_chars(port_part.data(), port_part.data() + port_part.size(), port);
        if (port == 0 || port > 65535) return bad("bad port");
        url.port = static_cast<uint16_t>(port);
    }
    return url;
}

std::optional<std::string> HttpResponse::header(std::string_view name) const {
    std::string key = lower(name);
    for (const auto& [k, v] : headers)
        if (k == key) return v;
    return std::nullopt;
}

std::vector<std::string> HttpResponse::links(std::string_view rel) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : headers) {
        if (k != "link") continue;
        // One header may carry several comma-separated links.
        std::string_view rest = v;
        while (!rest.empty()) {
            size_t open = rest.find('<');
            if (open == std::string_view::npos) break;
            size_t close = rest.find('>', open);
            if (close == std::string_view::npos) break;
            std::string target(rest.substr(open + 1, close - open - 1));
            size_t next = rest.find('<', close);
            std::string params = lower(rest.substr(close + 1, next == std::string_view::npos ? next : next - close - 1));
            params.erase(std::remove_if(params.begin(), params.end(), [](char c) { return c == ' ' || c == '"'; }),
                         params.end());
            if (params.find("rel=" + std::string(rel)) != std::string::npos) out.push_back(target);
            if (next == std::string_view::npos) break;
            rest = rest.substr(next);
        }
    }
    return out;
}

HttpParse parse_http_response(std::string_view data, bool eof, const HttpLimits& limits) {
    size_t start = 0;
    for (;;) {
        std::string_view view = data.substr(start);
        size_t head_end = view.find("\r\n\r\n");
        if (head_end == std::string_view::npos) {
            if (view.size() > limits.max_header_bytes)
                return fail("response header larger than " + std::to_string(limits.max_header_bytes) + " bytes");
            if (eof) return fail(view.empty() ? "empty response (connection closed)" : "truncated response header");
            return {};
        }
        if (head_end > limits.max_header_bytes)
            return fail("response header larger than " + std::to_string(limits.max_header_bytes) + " bytes");
        std::string_view head = view.substr(0, head_end);
        size_t line_end = head.find("\r\n");
        std::string_view status_line = head.substr(0, line_end);
        // "HTTP/1.1 200 OK"
        if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ' ||
            !all_digits(status_line.substr(9, 3)) || (status_line.size() > 12 && status_line[12] != ' '))
            return fail("not an HTTP/1.x response");
        HttpParse out;
        out.response.status = (status_line[9] - '0') * 100 + (status_line[10] - '0') * 10 + (status_line[11] - '0');
        if (out.response.status < 100) return fail("bad HTTP status code");
        std::string_view rest = line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
        while (!rest.empty()) {
            size_t e = rest.find("\r\n");
            std::string_view line = rest.substr(0, e);
            rest = e == std::string_view::npos ? std::string_view() : rest.substr(e + 2);
            if (line.empty()) continue;
            if (line.front() == ' ' || line.front() == '\t') return fail("folded header lines are not allowed");
            size_t colon = line.find(':');
            if (colon == std::string_view::npos || colon == 0) return fail("malformed header line");
            std::string_view name = line.substr(0, colon);
            if (name.find_first_of(" \t") != std::string_view::npos) return fail("malformed header name");
            out.response.headers.emplace_back(lower(name), std::string(trim(line.substr(colon + 1))));
            if (out.response.headers.size() > 200) return fail("too many header lines");
        }
        size_t body_start = start + head_end + 4;
        int status = out.response.status;
        if (status >= 100 && status < 200) {  // interim response: the real one follows
            start = body_start;
            continue;
        }
        std::string_view body = data.substr(body_start);
        if (status == 204 || status == 304) {
            out.state = HttpParse::State::complete;
            return out;
        }
        std::optional<std::string> te = out.response.header("transfer-encoding");
        if (te) {
            std::string coding = lower(*te);
            if (coding != "chunked") return fail("unsupported transfer coding \"" + coding.substr(0, 40) + "\"");
            std::string error;
            HttpParse::State st = decode_chunked(body, eof, limits.max_body_bytes, out.response.body, error);
            if (st == HttpParse::State::error) return fail(error);
            out.state = st;
            if (st == HttpParse::State::incomplete) out.response.body.clear();
            return out;
        }
        std::optional<size_t> length;
        for (const auto& [k, v] : out.response.headers) {
            if (k != "content-length") continue;
            if (!all_digits(v) || v.size() > 12) return fail("bad Content-Length");
            size_t n = 0;
            std::from_chars(v.data(), v.data() + v.size(), n);
            if (length && *length != n) return fail("conflicting Content-Length headers");
            length = n;
        }
        if (length) {
            if (*length > limits.max_body_bytes)
                return fail("response body larger than " + std::to_string(limits.max_body_bytes) + " bytes");
            if (body.size() < *length) {
                if (eof) return fail("truncated response body (" + std::to_string(body.size()) + " of " +
                                     std::to_string(*length) + " bytes)");
                return {};
            }
            out.response.body = std::string(body.substr(0, *length));
            out.state = HttpParse::State::complete;
            return out;
        }
        if (body.size() > limits.max_body_bytes)
            return fail("response body larger than " + std::to_string(limits.max_body_bytes) + " bytes");
        if (!eof) return {};
        out.response.body = std::string(body);
        out.state = HttpParse::State::complete;
        return out;
    }
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now) {
    constexpr long long kMax = 24 * 3600;
    std::string_view v = trim(value);
    if (v.empty()) return std::nullopt;
    if (all_digits(v)) {
        if (v.size() > 9) return std::chrono::seconds(kMax);
        long long n = 0;
        std::from_chars(v.data(), v.data() + v.size(), n);
        return std::chrono::seconds(std::min(n, kMax));
    }
    std::tm tm{};
    std::string copy(v);
    const char* end = strptime(copy.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == nullptr || *end != '\0') return std::nullopt;
    time_t when = timegm(&tm);
    long long delta = static_cast<long long>(when) - static_cast<long long>(std::chrono::system_clock::to_time_t(now));
    return std::chrono::seconds(std::clamp(delta, 0LL, kMax));
}

}  // namespace keyward::acme
