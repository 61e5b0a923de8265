// How a key looks on the terminal and in --json output.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "cli/json_output.hpp"
#include "core/result.hpp"
#include "ipc/protocol.hpp"

namespace keyward::cli {

// "ecdsa_secp256r1_sha256", or "0x0403"-style for a code point this CLI does not know.
std::string scheme_display_name(Scheme scheme);
// SHA-256 of the SubjectPublicKeyInfo DER, lower-case hex.
std::string spki_sha256(std::span<const uint8_t> spki);
// The SPKI as a "PUBLIC KEY" PEM block, after checking that it parses.
Result<std::string> spki_pem(std::span<const uint8_t> spki);

// `text` with control characters shown as '?', so that device-supplied strings cannot
// drive the terminal.
std::string printable(std::string_view text);

// One key as a JSON object: name, type, bits, token, schemes, spki_sha256, attributes.
JsonDocument key_json(const ipc::KeyInfo& key);
// The multi-line human form used by `keys show` and `keys create`.
std::string key_text(const ipc::KeyInfo& key);
// What `keys show`, `keys create` and `keys import` print: with --json the key object,
// else the headline line (when there is one) and key_text. Returns exit_ok.
int print_key(const ipc::KeyInfo& key, bool json, std::string_view headline = {});

}  // namespace keyward::cli
