#include "pkcs11/uri.hpp"

#include <charconv>
#include <climits>

namespace keyward::pkcs11 {
namespace {

constexpr std::string_view kScheme = "pkcs11:";

Status bad(std::string_view uri, std::string what) {
    return Status{ErrorCode::invalid_argument, "invalid PKCS#11 URI '" + std::string(uri) + "': " + what};
}

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

// Percent-decodes `in`; nullopt with `why` set on a truncated or non-hex escape or a control byte.
std::optional<std::string> percent_decode(std::string_view in, std::string& why) {
    std::string out;
    out.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        const char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size()) {
                why = "truncated %-escape at the end of '" + std::string(in) + "'";
                return std::nullopt;
            }
            const int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0) {
                why = "bad %-escape '" + std::string(in.substr(i, 3)) + "' in '" + std::string(in) + "'";
                return std::nullopt;
            }
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            why = "control character in '" + std::string(in) + "' (percent-encode it)";
            return std::nullopt;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

// Walks the path attributes of `uri` (`path` is what follows "pkcs11:", up to any query): each
// `name=value` between ';'s reaches `visit(name, value)` with the value percent-decoded and non-empty.
// A trailing ';' is tolerated; a stray one, a missing '=', an empty name or value, or a bad escape
// is refused here, and the first refusal (here or from `visit`) ends the walk.
template <typename Visit>
Status for_each_path_attribute(std::string_view uri, std::string_view path, Visit&& visit) {
    while (!path.empty()) {
        const size_t semi = path.find(';');
        const std::string_view part = path.substr(0, semi);
        path = semi == std::string_view::npos ? std::string_view{} : path.substr(semi + 1);
        if (part.empty()) {
            if (semi != std::string_view::npos || !path.empty()) return bad(uri, "empty attribute (stray ';')");
            break;
        }
        const size_t eq = part.find('=');
        if (eq == std::string_view::npos) return bad(uri, "attribute '" + std::string(part) + "' has no '=value'");
        const std::string_view name = part.substr(0, eq);
        if (name.empty()) return bad(uri, "attribute without a name ('" + std::string(part) + "')");
        std::string why;
        auto value = percent_decode(part.substr(eq + 1), why);
        if (!value) return bad(uri, why);
        if (value->empty()) return bad(uri, "attribute '" + std::string(name) + "' has an empty value");
        if (Status s = visit(name, std::move(*value)); !s.ok()) return s;
    }
    return Status::success();
}

// What follows the case-insensitive "pkcs11:" scheme, or nullopt where the scheme is missing.
std::optional<std::string_view> after_scheme(std::string_view uri) noexcept {
    if (uri.size() < kScheme.size() || !iequals(uri.substr(0, kScheme.size()), kScheme)) return std::nullopt;
    return uri.substr(kScheme.size());
}

}  // namespace

Result<TokenUri> parse_token_uri(std::string_view uri) {
    const auto path = after_scheme(uri);
    if (!path) return bad(uri, "must start with \"pkcs11:\"");
    std::string_view rest = *path;
    if (const size_t q = rest.find('?'); q != std::string_view::npos) {
        // Query attributes (pin-value, pin-source, module-path, ...) have their own config keys here.
        return bad(uri, "query attributes ('" + std::string(rest.substr(q + 1)) +
                            "') are not supported; the PIN comes from pin_file and the module from module");
    }
    TokenUri out;
    std::string unknown;
    Status walked = for_each_path_attribute(uri, rest, [&](std::string_view name, std::string value) -> Status {
        std::optional<std::string>* text = nullptr;
        if (name == "token") text = &out.token;
        else if (name == "manufacturer") text = &out.manufacturer;
        else if (name == "serial") text = &out.serial;
        else if (name == "model") text = &out.model;
        if (text) {
            if (*text) return bad(uri, "attribute '" + std::string(name) + "' appears twice");
            *text = std::move(value);
        } else if (name == "slot-id") {
            if (out.slot_id) return bad(uri, "attribute 'slot-id' appears twice");
            unsigned long id = 0;
            const char* first = value.data();
            const char* last = first + value.size();
            auto [ptr, ec] = std::from_chars(first, last, id, 10);
            if (ec != std::errc{} || ptr != last) return bad(uri, "slot-id '" + value + "' is not a decimal number");
            out.slot_id = id;
        } else {
            if (!unknown.empty()) unknown += "', '";
            unknown += std::string(name);
        }
        return Status::success();
    });
    if (!walked.ok()) return walked;
    if (!unknown.empty())
        return bad(
            uri, "unsupported attribute(s) '" + unknown + "' (supported: token, manufacturer, serial, model, slot-id)");
    return out;
}

Result<ObjectUri> parse_object_uri(std::string_view uri) {
    const auto path = after_scheme(uri);
    if (!path) return bad(uri, "must start with \"pkcs11:\"");
    if (path->find('?') != std::string_view::npos)
        return bad(uri, "query attributes are not supported here; the PIN comes from the token's pin_file");
    ObjectUri out;
    Status walked = for_each_path_attribute(uri, *path, [&](std::string_view name, std::string value) -> Status {
        if (name == "id" || name == "object") {
            auto& slot = name == "id" ? out.id : out.object;
            if (slot) return bad(uri, "attribute '" + std::string(name) + "' appears twice");
            slot = std::move(value);
        } else if (name == "type") {
            if (value != "private")
                return bad(uri, "type '" + value + "': a key is adopted by its private key (type=private)");
        } else {
            return bad(uri, "unsupported attribute '" + std::string(name) +
                                "' (a key is selected by id and/or object; the token by the token's uri)");
        }
        return Status::success();
    });
    if (!walked.ok()) return walked;
    if (!out.id && !out.object) return bad(uri, "names no object (give id=%XX... and/or object=LABEL)");
    return out;
}

}  // namespace keyward::pkcs11
