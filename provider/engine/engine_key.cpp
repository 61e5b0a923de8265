#include "provider/engine/engine_key.hpp"

#include "core/legacy_key.hpp"

namespace keyward::engine {

namespace {

// What each key the engine hands out keeps: its name in the agent and the engine's agent
// connection (which outlives the engine as long as keys do).
struct EngineKey {
    std::string name;
    std::shared_ptr<keyward::Client> client;
};

provider::Reason reason_for(ErrorCode code) {
    switch (code) {
        case ErrorCode::unsupported_scheme: return provider::Reason::unsupported;
        case ErrorCode::invalid_argument: return provider::Reason::invalid_argument;
        case ErrorCode::protocol_error: return provider::Reason::agent_error;
        default: return provider::Reason::internal;
    }
}

LegacySigner signer_for(const std::shared_ptr<EngineKey>& key) {
    LegacySigner signer;
    signer.name = key->name;
    signer.sign = [key](Scheme scheme, std::span<const uint8_t> digest) -> Result<std::vector<uint8_t>> {
        auto answer = key->client->sign(key->name, scheme, digest);
        if (!answer.ok()) {
            raise_status(answer.status(), key->name, *key->client, "signing");
            return answer;
        }
        if (debug_enabled()) {
            const auto* info = scheme_info(scheme);
            debug("signed with key " + key->name + " (" + std::string(info ? info->name : "?") + ")");
        }
        return answer;
    };
    signer.fail = [](const Status& status) { raise(reason_for(status.code), "keyward engine: " + status.message); };
    return signer;
}

}  // namespace

EVP_PKEY* load_engine_key(ENGINE* e, const std::string& name, std::shared_ptr<keyward::Client> client) {
    auto key = std::make_shared<EngineKey>(EngineKey{name, std::move(client)});
    auto info = key->client->get_key(name);
    if (!info.ok()) {
        raise_status(info.status(), name, *key->client, "loading the key");
        return nullptr;
    }
    auto pkey = make_legacy_pkey(info->spki, key, signer_for(key), e);
    if (!pkey.ok()) {
        const Status& s = pkey.status();
        raise(reason_for(s.code), "keyward engine: " + s.message);
        return nullptr;
    }
    debug("loaded key " + name);
    return pkey.value().release();
}

}  // namespace keyward::engine
