// The key object behind our KEYMGMT: the name of an agent-held key plus its public key,
// parsed by the default provider (so every public parameter OpenSSL asks about is
// answered by the same code that answers for file keys). A key object without a name
// holds only a public key that OpenSSL imported (e.g. a certificate's, to compare).
#pragma once

#include <openssl/evp.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/ossl.hpp"
#include "core/scheme_select.hpp"
#include "provider/context.hpp"

namespace keyward::provider {

// OpenSSL's names for each kind, as the default provider registers them. The first
// name of each is what OSSL_OBJECT_PARAM_DATA_TYPE carries.
std::string_view key_kind_type_name(KeyKind kind) noexcept;   // "EC", "RSA", "RSA-PSS"
const char* key_kind_algorithm_names(KeyKind kind) noexcept;  // "EC:id-ecPublicKey:1.2.840.10045.2.1"

struct KeyObject {
    ProviderContext* provider = nullptr;
    KeyKind kind = KeyKind::ec;
    std::string name;  // empty: public key only
    ossl::PKey pub;    // from the default provider, in provider->libctx()
    // Keys decoded from a key-reference file: whether the agent's key of that name is still
    // the key the reference was made for (a key deleted and re-created under the same name
    // is not). Shared by copies and signature contexts, checked once before the first
    // signature. Null for keys that came from the agent itself.
    std::shared_ptr<std::atomic<bool>> reference_confirmed;

    bool has_public() const noexcept { return pub != nullptr; }
    bool has_private() const noexcept { return pub != nullptr && !name.empty(); }
};

// The kind of a parsed public key, if it is one we handle.
bool kind_of(const EVP_PKEY* pub, KeyKind& kind) noexcept;

// Parses a SubjectPublicKeyInfo with the default provider. Null (error raised) if invalid.
ossl::PKey parse_spki(ProviderContext& ctx, const SourceLocation& where, std::span<const uint8_t> spki);

// A key object for agent key `name` with public key `spki`, or null with an error raised.
std::unique_ptr<KeyObject> make_agent_key(ProviderContext& ctx, const SourceLocation& where, std::string name,
                                          std::span<const uint8_t> spki);

// For a key from a reference file: true when the agent's key `name` has the public key
// `pub`; otherwise raises "the key 'NAME' in the agent is not the key this reference was
// made for" (or why the agent could not be asked) and returns false.
bool agent_still_has(ProviderContext& ctx, const SourceLocation& where, const std::string& name, const EVP_PKEY* pub);

// Asks the agent for key `name` (GET_KEY) and builds its key object.
std::unique_ptr<KeyObject> fetch_agent_key(ProviderContext& ctx, const SourceLocation& where, std::string_view name);

}  // namespace keyward::provider
