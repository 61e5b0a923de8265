#include "agent/lifecycle/acme/http_message.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <memory>

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
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

using CurlUrl = std::unique_ptr<CURLU, decltype(&curl_url_cleanup)>;

// One part of a parsed URL; nullopt when the URL has none.
std::optional<std::string> part(CURLU* url, CURLUPart which, unsigned flags = 0) {
    char* text = nullptr;
    if (curl_url_get(url, which, &text, flags) != CURLUE_OK) return std::nullopt;
    std::unique_ptr<char, decltype(&curl_free)> owned(text, curl_free);
    return std::string(text);
}

}  // namespace

std::string Url::authority() const {
    std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    return h + ":" + std::to_string(port);
}

Result<Url> parse_url(std::string_view text, std::initializer_list<std::string_view> schemes) {
    auto bad = [&](const std::string& why) {
        return Status{ErrorCode::invalid_argument, "URL \"" + std::string(text.substr(0, 200)) + "\": " + why};
    };
    if (text.size() > 2048) return bad("too long");
    // curl would percent-encode or pass some of these on; a configured URL should not need them.
    for (char c : text)
        if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
            return bad("contains spaces or control characters");
    if (text.find("://") == std::string_view::npos) return bad("not an absolute URL");
    CurlUrl handle(curl_url(), curl_url_cleanup);
    if (!handle) return Status{ErrorCode::internal, "out of memory"};
    std::string copy(text);
    if (CURLUcode rc = curl_url_set(handle.get(), CURLUPART_URL, copy.c_str(), CURLU_NON_SUPPORT_SCHEME);
        rc != CURLUE_OK)
        return bad(curl_url_strerror(rc));
    Url url;
    url.scheme = lower(part(handle.get(), CURLUPART_SCHEME).value_or(""));
    if (std::find(schemes.begin(), schemes.end(), url.scheme) == schemes.end()) {
        std::string allowed;
        for (std::string_view s : schemes) allowed += (allowed.empty() ? "" : " or ") + std::string(s);
        return bad("only " + allowed + " is allowed");
    }
    if (part(handle.get(), CURLUPART_USER) || part(handle.get(), CURLUPART_PASSWORD))
        return bad("user info is not allowed");
    std::string host = part(handle.get(), CURLUPART_HOST).value_or("");
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    url.host = lower(host);
    if (url.host.empty()) return bad("no host");
    // An explicit ":0" is refused here; curl would take it as "the default port".
    if (auto explicit_port = part(handle.get(), CURLUPART_PORT); explicit_port && *explicit_port == "0")
        return bad("bad port");
    std::string port = part(handle.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT).value_or("");
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) return bad("bad port");
    url.port = static_cast<uint16_t>(value);
    url.target = part(handle.get(), CURLUPART_PATH).value_or("/");
    if (url.target.empty()) url.target = "/";
    if (auto query = part(handle.get(), CURLUPART_QUERY)) url.target += "?" + *query;
    return url;
}

std::optional<std::string> HttpResponse::header(std::string_view name) const {
    std::string key = lower(name);
    for (const auto& [k, v] : headers)
        if (k == key) return v;
    return std::nullopt;
}

bool HttpResponse::add_header_line(std::string_view line) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    std::string_view name = line.substr(0, colon);
    if (name.find_first_of(" \t") != std::string_view::npos) return false;
    headers.emplace_back(lower(name), std::string(trim(line.substr(colon + 1))));
    return true;
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
            std::string params =
                lower(rest.substr(close + 1, next == std::string_view::npos ? next : next - close - 1));
            params.erase(std::remove_if(params.begin(), params.end(), [](char c) { return c == ' ' || c == '"'; }),
                         params.end());
            if (params.find("rel=" + std::string(rel)) != std::string::npos) out.push_back(target);
            if (next == std::string_view::npos) break;
            rest = rest.substr(next);
        }
    }
    return out;
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
