// The [identities.NAME.issuer] table of kind "cmp" (RFC 4210 / RFC 9483 over HTTP):
// strict checking with file:line:key errors, and the parsed form.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <toml++/toml.h>

#include "core/result.hpp"

namespace keyward::cmp {

struct CmpConfig {
    std::string server;  // "http://host:port/path" or "https://..." as written
    std::string host;    // from `server`
    int port = 80;
    bool tls = false;              // https://: TLS to the server, its certificate verified to tls_trusted
    std::string tls_trusted;       // PEM file: CAs the TLS server's certificate must chain to
    bool tls_client_auth = false;  // present the certificate in force and its device key to the TLS server
    std::string path = "/";
    std::string trusted;      // PEM file: CAs that the server's protection certificate chains to
    std::string server_cert;  // PEM file: the server's protection certificate, pinned
    std::string recipient;    // "/CN=..." (empty: the server certificate's subject or NULL-DN)
    // Initial request (ir) credentials: a shared secret (PBM) or a bootstrap certificate.
    std::string reference;          // senderKID for the shared secret
    std::string secret_file;        // the secret itself, read at each use, never logged
    std::string bootstrap_cert;     // PEM file
    std::string bootstrap_key;      // device key name of the bootstrap certificate's key
    std::string digest = "sha256";  // for protection and proof of possession
    bool implicit_confirm = false;
    std::chrono::seconds timeout{30};          // one message round trip
    std::chrono::seconds total_timeout{120};   // one submit/poll call, polling included
    std::chrono::seconds poll_inline_max{10};  // a checkAfter up to this is waited inside the call
    // An HTTP proxy for the server ("http://host:port"); unset: OpenSSL's environment rules
    // (http_proxy / HTTP_PROXY minus no_proxy / NO_PROXY). An explicit proxy is used with the
    // explicit no_proxy only.
    std::optional<std::string> proxy;
    std::optional<std::string> no_proxy;  // server names that bypass the proxy, comma-separated

    bool has_secret() const { return !secret_file.empty(); }
    bool has_bootstrap() const { return !bootstrap_cert.empty(); }
};

// Errors: "source:line: prefix.key: what".
Status check_cmp_config(const toml::table& table, const std::string& source, const std::string& prefix);
// Only for tables check_cmp_config accepted.
CmpConfig read_cmp_config(const toml::table& table);

}  // namespace keyward::cmp
