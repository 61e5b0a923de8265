// What the certificate lifecycle may do with device keys: the agent hands it these calls,
// which run on the keys' token executors (so they may block the calling thread, never the
// event loop). The lifecycle never sees key material either.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "ipc/protocol.hpp"
#include "core/result.hpp"

namespace keyward::lifecycle {

struct KeyAccess {
    std::function<Result<ipc::KeyInfo>(const std::string& key)> describe;
    std::function<Result<std::vector<uint8_t>>(const std::string& key, Scheme scheme, std::span<const uint8_t> digest)>
        sign;
    // type: "ec-p256", ...; token: empty for the default token.
    std::function<Result<ipc::KeyInfo>(const std::string& key, const std::string& type, const std::string& token)>
        generate;
    std::function<Status(const std::string& key)> destroy;
    // Removes the objects named `key` on `token` (empty: the default token) when the agent
    // does not list a key by that name: halves left by a generation cut short (a public key
    // without its private key), or a replaced key whose private half is already gone. A
    // listed key is refused (key_exists): that is destroy's job. no_such_key: nothing there.
    std::function<Status(const std::string& key, const std::string& token)> remove_orphan;
};

}  // namespace keyward::lifecycle
