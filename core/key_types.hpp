// The key types keyward makes and uses, named once: every part (agent, backends, CLI,
// lifecycle configuration, provider) asks this table instead of keeping its own list.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace keyward {

enum class KeyType { ec_p256, ec_p384, rsa_2048, rsa_3072, rsa_4096 };

// Every key type, in the order people read them ("ec-p256" first).
std::span<const KeyType> all_key_types() noexcept;
std::optional<KeyType> key_type_from_name(std::string_view name) noexcept;  // "ec-p256"
std::string_view key_type_name(KeyType t) noexcept;
uint32_t key_type_bits(KeyType t) noexcept;
bool key_type_is_ec(KeyType t) noexcept;
// "ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096", for messages that list the choices.
std::string key_type_names(std::string_view separator = ", ");
// The EC key type of a curve size in bits (256, 384); nullopt for any other.
std::optional<KeyType> ec_key_type_for_bits(int bits) noexcept;
// The RSA key type of a modulus size in bytes (256, 384, 512); nullopt for any other.
std::optional<KeyType> rsa_key_type_for_bytes(size_t modulus_bytes) noexcept;

// A fact about a key as read back from its device ("sensitive" = "true").
struct Attribute {
    std::string name;
    std::string value;
    bool operator==(const Attribute&) const = default;
};

}  // namespace keyward
