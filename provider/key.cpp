#include "provider/key.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>

namespace keyward::provider {

std::string_view key_kind_type_name(KeyKind kind) noexcept {
    switch (kind) {
        case KeyKind::ec: return "EC";
        case KeyKind::rsa: return "RSA";
        case KeyKind::rsa_pss: return "RSA-PSS";
    }
    return "EC";
}

const char* key_kind_algorithm_names(KeyKind kind) noexcept {
    switch (kind) {
        case KeyKind::ec: return "EC:id-ecPublicKey:1.2.840.10045.2.1";
        case KeyKind::rsa: return "RSA:rsaEncryption:1.2.840.113549.1.1.1";
        case KeyKind::rsa_pss: return "RSA-PSS:RSASSA-PSS:1.2.840.113549.1.1.10";
    }
    return "";
}

bool kind_of(const EVP_PKEY* pub, KeyKind& kind) noexcept {
    // RSA-PSS first: it is not an "RSA" key, but be explicit about the order anyway.
    if (EVP_PKEY_is_a(pub, "RSA-PSS")) {
        kind = KeyKind::rsa_pss;
    } else if (EVP_PKEY_is_a(pub, "RSA")) {
        kind = KeyKind::rsa;
    } else if (EVP_PKEY_is_a(pub, "EC")) {
        kind = KeyKind::ec;
    } else {
        return false;
    }
    return true;
}

ossl::PKey parse_spki(ProviderContext& ctx, const SourceLocation& where, std::span<const uint8_t> spki) {
    const unsigned char* p = spki.data();
    ERR_set_mark();
    ossl::PKey pub(
        d2i_PUBKEY_ex(nullptr, &p, static_cast<long>(spki.size()), ctx.libctx(), ProviderContext::kDefaultProps));
    if (!pub || p != spki.data() + spki.size()) {
        ERR_pop_to_mark();
        ctx.raise(where, Reason::invalid_argument,
                  "keyward: cannot parse the public key (is the \"default\" provider active?)");
        return nullptr;
    }
    ERR_clear_last_mark();
    return pub;
}

std::unique_ptr<KeyObject> make_agent_key(ProviderContext& ctx, const SourceLocation& where, std::string name,
                                          std::span<const uint8_t> spki) {
    ossl::PKey pub = parse_spki(ctx, where, spki);
    if (!pub) return nullptr;
    auto key = std::make_unique<KeyObject>();
    if (!kind_of(pub.get(), key->kind)) {
        ctx.raise(where, Reason::unsupported, "keyward: key " + name + " has a key type keyward does not handle");
        return nullptr;
    }
    key->provider = &ctx;
    key->name = std::move(name);
    key->pub = std::move(pub);
    return key;
}

bool agent_still_has(ProviderContext& ctx, const SourceLocation& where, const std::string& name, const EVP_PKEY* pub) {
    auto info = ctx.client().get_key(name);
    if (!info.ok()) {
        ctx.raise_status(where, info.status(), name, "signing");  // the check is the first step of signing
        return false;
    }
    ossl::PKey current = parse_spki(ctx, where, info->spki);
    if (!current) return false;
    if (EVP_PKEY_eq(pub, current.get()) != 1) {
        ERR_clear_error();  // EVP_PKEY_eq may leave type-mismatch noise; ours says what happened
        ctx.raise(where, Reason::invalid_argument,
                  "keyward: the key '" + name +
                      "' in the agent is not the key this reference was made for (deleted and re-created?)");
        return false;
    }
    return true;
}

std::unique_ptr<KeyObject> fetch_agent_key(ProviderContext& ctx, const SourceLocation& where, std::string_view name) {
    auto info = ctx.client().get_key(name);
    if (!info.ok()) {
        ctx.raise_status(where, info.status(), name, "loading the key");
        return nullptr;
    }
    ctx.debug("loaded key " + std::string(name) + " (" + info->type + ")");
    return make_agent_key(ctx, where, std::string(name), info->spki);
}

}  // namespace keyward::provider
