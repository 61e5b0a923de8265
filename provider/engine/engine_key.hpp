// What the keyward ENGINE attaches to each RSA / EC_KEY it hands out: the key's name in
// the agent and the engine's shared agent connection, plus error reporting. The RSA and
// EC methods find it through ex_data.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "ipc/client.hpp"
#include "provider/failure_text.hpp"

namespace keyward::engine {

struct EngineKey {
    std::string name;
    std::shared_ptr<keyward::Client> client;
};

// Puts one error on the OpenSSL error queue under the engine's library ("keyward engine").
void raise(provider::Reason reason, std::string_view message);
void raise_status(const Status& status, const EngineKey& key, std::string_view doing);

bool debug_enabled() noexcept;
void debug(std::string_view message);

}  // namespace keyward::engine
