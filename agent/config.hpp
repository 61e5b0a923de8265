// keywardd's configuration (/etc/keyward/keyward.toml), documented in docs/config.md.
// Parsing is strict: an unknown key, a wrong type or an unknown user is an error that
// names the file, the line and the key, and the agent refuses to start on it.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/lifecycle/lifecycle.hpp"
#include "core/result.hpp"

namespace keyward::agent {

inline constexpr std::string_view kDefaultConfigPath = "/etc/keyward/keyward.toml";
inline constexpr std::string_view kDefaultStateDir = "/var/lib/keyward";
inline constexpr std::string_view kEmbeddedTokenName = "embedded";

struct Principals {
    std::vector<uid_t> users;
    std::vector<gid_t> groups;
    bool operator==(const Principals&) const = default;
};

struct TokenConfig {
    std::string name;
    std::string kind;  // "pkcs11" or "tpm"
    // pkcs11
    std::string module;
    std::string uri;
    std::string pin_file;
    size_t sessions = 0;  // 0: the backend's default (1 for a card)
    bool card = false;    // a smartcard (docs/smartcard.md): adopted keys only, hot-plug, serial checked
    std::string reader;   // the PC/SC reader a card token watches (card = true)
    // card = true: a device call waiting longer fails, and the token is unavailable until it returns.
    int card_timeout_seconds = 15;
    // Keys adopted on this token ([keys.NAME] object = "pkcs11:id=..."): name, object URI.
    std::vector<std::pair<std::string, std::string>> adopted;
    // tpm
    std::string tcti;       // default "device:/dev/tpmrm0"
    std::string key_dir;    // wrapped key blobs; default STATE_DIR/tpm/NAME
    std::string auth_file;  // optional auth value for the keys made on this token
    bool operator==(const TokenConfig&) const = default;
};

struct KeyConfig {
    std::string name;
    std::string token;   // empty: wherever a key of that name is found
    std::string object;  // RFC 7512 object URI of a key already on the token (adoption)
    Principals allow;    // who may sign with it
    bool operator==(const KeyConfig&) const = default;
};

struct AgentConfig {
    std::string source;  // the file it came from ("" for built-in defaults)
    std::string socket;  // empty: state_dir/agent.sock (embedded) or the system default
    std::optional<mode_t> socket_mode;
    std::optional<gid_t> socket_group;
    std::string state_dir = std::string(kDefaultStateDir);
    std::string default_token;  // empty: the first token
    std::string log_level = "info";
    Principals admins;                // may generate and delete keys (root and the agent's uid always may)
    Principals default_allow;         // who may sign with keys that have no [keys.NAME] entry
    std::vector<TokenConfig> tokens;  // in file order
    std::vector<KeyConfig> keys;
    std::vector<std::shared_ptr<const lifecycle::IdentityConfig>> identities;
    // Connection limits and timeouts (docs/config.md). 0 connections: sized from the open-file limit.
    size_t max_connections = 0;
    size_t max_connections_per_uid = 0;
    // Event loops serving connections (docs/config.md); 0: one per CPU, at most 8. Restart to change.
    size_t event_loops = 0;
    int read_timeout_seconds = 10;       // a frame begun must be complete by then
    int idle_timeout_seconds = 600;      // a connection with nothing pending is closed after this
    bool audit_every_signature = false;  // audit = "every-signature" (default "summary")
    int audit_interval_seconds = 600;
    // The embedded token's user PIN: "auto" (sealed to /dev/tpmrm0 when there is one), "no"
    // (user.pin), or the TCTI of the TPM to seal it to.
    std::string seal_embedded_pin = "auto";
    // Metrics (docs/monitoring.md): an HTTP endpoint "HOST:PORT" and/or a textfile; both off when empty.
    std::string metrics_listen;
    std::string metrics_file;
    int metrics_interval_seconds = 15;

    const KeyConfig* key(std::string_view name) const;
};

// Parses TOML text; `source` names the file in error messages.
Result<AgentConfig> parse_config(std::string_view text, const std::string& source);
// Reads and parses a file. A missing file is an error here: the caller decides whether
// the absence of the default file means "embedded defaults".
Result<AgentConfig> load_config(const std::string& path);

bool is_valid_key_name(std::string_view name) noexcept;

}  // namespace keyward::agent
