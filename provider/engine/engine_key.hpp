// The keys the keyward ENGINE hands out: the key's public half from the agent, wrapped by
// core/legacy_key.hpp so that signing asks the agent (through the engine's shared agent
// connection), and the engine's error reporting.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <openssl/types.h>

#include "ipc/client.hpp"
#include "provider/failure_text.hpp"

namespace keyward::engine {

// Asks the agent for key `name` and makes an EVP_PKEY whose signatures the agent makes.
// `e` is attached to RSA keys (its pkey method carries PSS). Null, with the error raised, on failure.
EVP_PKEY* load_engine_key(ENGINE* e, const std::string& name, std::shared_ptr<keyward::Client> client);

// Puts one error on the OpenSSL error queue under the engine's library ("keyward engine").
void raise(provider::Reason reason, std::string_view message);
// The same for a failed agent call about `key`.
void raise_status(const Status& status, std::string_view key, const keyward::Client& client, std::string_view doing);

bool debug_enabled() noexcept;
void debug(std::string_view message);

}  // namespace keyward::engine
