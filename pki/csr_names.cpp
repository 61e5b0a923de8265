// Parsing of the subject and subjectAltName arguments of a CSR.
#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include <openssl/err.h>
#include <openssl/objects.h>

#include "pki/csr.hpp"
#include "core/ossl.hpp"

namespace keyward::pki {
namespace {

constexpr std::string_view kSubjectForm = "write it as /TYPE=value/TYPE=value..., e.g. /CN=client/O=Example";

Status subject_error(std::string_view text, std::string why) {
    return {ErrorCode::invalid_argument,
            "bad subject \"" + std::string(text) + "\": " + why + "; " + std::string(kSubjectForm)};
}

bool is_printable_ascii(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

}  // namespace

Result<std::vector<SubjectAttribute>> parse_subject(std::string_view text) {
    if (text.empty() || text.front() != '/') return subject_error(text, "it does not start with '/'");

    // Split on unescaped '/', resolving escapes as we go.
    std::vector<std::string> parts;
    std::vector<size_t> first_equals;  // position of the first unescaped '=' in each part
    std::string current;
    size_t equals = std::string::npos;
    for (size_t i = 1; i <= text.size(); ++i) {
        if (i == text.size() || text[i] == '/') {
            parts.push_back(std::move(current));
            first_equals.push_back(equals);
            current.clear();
            equals = std::string::npos;
            continue;
        }
        if (text[i] == '\\') {
            if (++i == text.size()) return subject_error(text, "it ends with a lone backslash");
            current += text[i];
            continue;
        }
        if (text[i] == '=' && equals == std::string::npos) equals = current.size();
        current += text[i];
    }
    // "/CN=x/" is accepted, as OpenSSL does.
    if (parts.size() > 1 && parts.back().empty()) {
        parts.pop_back();
        first_equals.pop_back();
    }

    std::vector<SubjectAttribute> out;
    ossl::Name scratch(X509_NAME_new());
    if (!scratch) return Status{ErrorCode::internal, "out of memory"};
    for (size_t k = 0; k < parts.size(); ++k) {
        const std::string& part = parts[k];
        if (part.empty()) return subject_error(text, "it has an empty component");
        if (first_equals[k] == std::string::npos) return subject_error(text, "component \"" + part + "\" has no '='");
        SubjectAttribute attr{part.substr(0, first_equals[k]), part.substr(first_equals[k] + 1)};
        if (attr.type.empty()) return subject_error(text, "component \"" + part + "\" has no type before '='");
        if (OBJ_txt2nid(attr.type.c_str()) == NID_undef) {
            // OpenSSL queued "unknown object name": our error says it, and a stale entry on the
            // thread's queue would be reported as the cause of the next, unrelated failure.
            ERR_clear_error();
            return subject_error(text, "unknown attribute type \"" + attr.type +
                                           "\" (known ones include CN, O, OU, C, ST, L, emailAddress, serialNumber)");
        }
        if (attr.value.empty()) return subject_error(text, "attribute " + attr.type + " has an empty value");
        // Let OpenSSL apply its own rules (lengths, character sets) now, before anything is signed.
        const auto* bytes = reinterpret_cast<const unsigned char*>(attr.value.data());
        if (!X509_NAME_add_entry_by_txt(scratch.get(), attr.type.c_str(), MBSTRING_UTF8, bytes,
                                        static_cast<int>(attr.value.size()), -1, 0)) {
            ERR_clear_error();
            return subject_error(text, "OpenSSL refuses the value of " + attr.type + " (\"" + attr.value +
                                           "\"), e.g. C must be a two-letter country code");
        }
        out.push_back(std::move(attr));
    }
    ERR_clear_error();
    return out;
}

Result<SubjectAltName> parse_san(std::string_view text) {
    const std::string shown(text);
    const size_t colon = text.find(':');
    if (colon == std::string_view::npos)
        return Status{ErrorCode::invalid_argument,
                      "bad SAN \"" + shown + "\": write it as KIND:VALUE with KIND one of dns, ip, email, uri"};
    const std::string kind = lower(text.substr(0, colon));
    SubjectAltName san;
    san.value = std::string(text.substr(colon + 1));
    if (san.value.empty()) return Status{ErrorCode::invalid_argument, "bad SAN \"" + shown + "\": the value is empty"};

    if (kind == "dns") {
        san.kind = SanKind::dns;
        if (!is_printable_ascii(san.value) || san.value.find_first_of("/@:") != std::string::npos)
            return Status{ErrorCode::invalid_argument,
                          "bad SAN \"" + shown + "\": not a DNS name (ASCII letters, digits, '-', '.', '*' only)"};
    } else if (kind == "ip") {
        san.kind = SanKind::ip;
        unsigned char buf[16];
        if (inet_pton(AF_INET, san.value.c_str(), buf) == 1) {
            san.ip.assign(buf, buf + 4);
        } else if (inet_pton(AF_INET6, san.value.c_str(), buf) == 1) {
            san.ip.assign(buf, buf + 16);
        } else {
            return Status{ErrorCode::invalid_argument, "bad SAN \"" + shown + "\": not an IPv4 or IPv6 address"};
        }
    } else if (kind == "email") {
        san.kind = SanKind::email;
        const size_t at = san.value.find('@');
        if (!is_printable_ascii(san.value) || at == std::string::npos || at == 0 || at + 1 == san.value.size())
            return Status{ErrorCode::invalid_argument,
                          "bad SAN \"" + shown + "\": not an e-mail address (local@domain)"};
    } else if (kind == "uri") {
        san.kind = SanKind::uri;
        const size_t scheme_end = san.value.find(':');
        if (!is_printable_ascii(san.value) || scheme_end == std::string::npos || scheme_end == 0)
            return Status{ErrorCode::invalid_argument,
                          "bad SAN \"" + shown + "\": not an absolute URI (scheme:rest, e.g. spiffe://example.org/x)"};
    } else {
        return Status{ErrorCode::invalid_argument, "unknown SAN kind \"" + std::string(text.substr(0, colon)) +
                                                       "\" in \"" + shown + "\": use dns:, ip:, email: or uri:"};
    }
    return san;
}

}  // namespace keyward::pki
