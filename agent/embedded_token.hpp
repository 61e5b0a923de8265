// The embedded default: with nothing configured, keywardd keeps its keys in a SoftHSM2
// token it creates in its state directory, so a first try needs no setup at all.
#pragma once

#include <string>

#include "agent/config.hpp"
#include "core/result.hpp"

namespace keyward::agent {

inline constexpr std::string_view kSoftHsmModule = "/usr/lib/softhsm/libsofthsm2.so";
inline constexpr std::string_view kEmbeddedTokenLabel = "keyward";

// Creates (first start) or finds the token under state_dir:
//   softhsm2.conf, tokens/ (0700), and the random user PIN in user.pin (0600) or sealed to
//   the TPM in user.pin.sealed (`seal_pin`: [agent] seal_embedded_pin, agent/embedded_pin.hpp).
// Points SOFTHSM2_CONF at it for this process. Safe to re-run after a crash at any step.
Result<TokenConfig> prepare_embedded_token(const std::string& state_dir, const std::string& seal_pin = "auto");

}  // namespace keyward::agent
