// The [identities.NAME.issuer] table of kind "acme": strict checking and the parsed form.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "core/result.hpp"

namespace keyward::acme {

struct AcmeConfig {
    std::string directory;                     // https URL of the directory resource
    std::string ca_file;                       // trust for the server's TLS; empty = system store
    std::string account_key = "acme-account";  // device key name
    std::string account_key_type = "ec-p256";  // when it must be generated
    std::string account_key_token;             // empty = default token
    std::vector<std::string> contact;          // "mailto:..." URLs
    bool agree_terms = true;
    std::string challenge = "http-01";         // "http-01" | "dns-01"
    std::string http01_listen;                 // "127.0.0.1:5002"
    std::vector<std::string> dns01_hook;       // argv, argv[0] absolute
    std::chrono::seconds dns01_wait{0};        // pause after "present" (propagation)
    std::chrono::seconds timeout{300};         // one submit/poll call, end to end
    std::chrono::seconds request_timeout{30};  // one HTTPS exchange
    std::optional<std::string> proxy;          // "http://host:port"; unset: the environment's
    std::optional<std::string> no_proxy;       // hosts that bypass the proxy (libcurl's syntax)
};

// Errors: "source:line: prefix.key: what".
Status check_acme_config(const toml::table& table, const std::string& source, const std::string& prefix);
// Only for tables check_acme_config accepted.
AcmeConfig read_acme_config(const toml::table& table);

}  // namespace keyward::acme
