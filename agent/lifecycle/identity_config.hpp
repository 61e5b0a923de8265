// The validated form of one [identities.NAME] table (docs/renewal.md has the reference).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "agent/lifecycle/lifecycle.hpp"
#include "agent/lifecycle/schedule.hpp"
#include "pki/csr.hpp"

namespace keyward::lifecycle {

struct IssuerConfig {
    std::string kind;  // "helper", "acme", "cmp"
    // helper
    std::vector<std::string> command;                // argv, run without a shell
    int64_t timeout = 300;                           // seconds per helper run
    std::string profile;                             // CERTMONGER_CA_PROFILE, when set
    std::map<std::string, std::string> environment;  // extra variables for the helper (no secrets)
    // acme, cmp: the table itself, handed to the issuer's own factory
    toml::table table;
};

struct IdentityConfig {
    std::string name;
    std::string source;                // file the identity came from, for messages
    std::string key;                   // device key name
    std::string key_type = "ec-p256";  // for keys made on enrollment or rekey
    std::string token;                 // empty: the default token
    std::string subject;               // "/CN=web.example"
    std::vector<pki::SubjectAttribute> subject_attributes;
    std::vector<std::string> sans;  // as written: "dns:web.example"
    std::vector<pki::SubjectAltName> san_values;
    std::string trust_anchors;  // PEM file of CA certificates
    bool require_client_auth = true;
    RenewalPolicy policy;
    bool rekey = false;                           // a new key on every renewal
    int64_t grace_period = 86400;                 // before a replaced key is destroyed
    int64_t revocation_check_interval = 3600;     // OCSP check of the certificate in force; 0: never
    std::string dir;                              // empty: STATE_DIR/identities/NAME
    std::vector<std::vector<std::string>> hooks;  // argv of each hook
    std::vector<std::string> reload_units;        // systemctl reload UNIT after a switch
    bool auto_enroll = true;                      // the agent enrolls by itself when there is no certificate
    // Programs run when the identity needs a person, and the time-left thresholds they hear
    // about (notify.hpp).
    std::vector<std::vector<std::string>> notify;
    std::vector<int64_t> notify_before = {7 * 86400, 86400};
    IssuerConfig issuer;
    std::string fingerprint;  // canonical text of the table: equal configs, equal text
};

// Checks and converts one identity table; exposed for unit tests.
Result<std::shared_ptr<const IdentityConfig>> parse_identity(const std::string& name, const toml::table& table,
                                                             const std::string& source, const IssuerKinds& kinds);

}  // namespace keyward::lifecycle
