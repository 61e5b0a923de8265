#include "core/key_types.hpp"

#include <array>

namespace keyward {
namespace {

struct KeyTypeRow {
    KeyType type;
    std::string_view name;
    uint32_t bits;
    bool ec;
};

constexpr std::array<KeyTypeRow, 5> kKeyTypes{{
    {KeyType::ec_p256, "ec-p256", 256, true},
    {KeyType::ec_p384, "ec-p384", 384, true},
    {KeyType::rsa_2048, "rsa-2048", 2048, false},
    {KeyType::rsa_3072, "rsa-3072", 3072, false},
    {KeyType::rsa_4096, "rsa-4096", 4096, false},
}};

constexpr std::array<KeyType, 5> kOrder{KeyType::ec_p256, KeyType::ec_p384, KeyType::rsa_2048, KeyType::rsa_3072,
                                        KeyType::rsa_4096};

const KeyTypeRow& row(KeyType t) noexcept {
    for (const auto& r : kKeyTypes)
        if (r.type == t) return r;
    return kKeyTypes[0];
}

}  // namespace

std::span<const KeyType> all_key_types() noexcept { return kOrder; }

std::optional<KeyType> key_type_from_name(std::string_view name) noexcept {
    for (const auto& r : kKeyTypes)
        if (r.name == name) return r.type;
    return std::nullopt;
}

std::string_view key_type_name(KeyType t) noexcept { return row(t).name; }
uint32_t key_type_bits(KeyType t) noexcept { return row(t).bits; }
bool key_type_is_ec(KeyType t) noexcept { return row(t).ec; }

std::string key_type_names(std::string_view separator) {
    std::string out;
    for (const auto& r : kKeyTypes) {
        if (!out.empty()) out += separator;
        out += r.name;
    }
    return out;
}

std::optional<KeyType> ec_key_type_for_bits(int bits) noexcept {
    for (const auto& r : kKeyTypes)
        if (r.ec && static_cast<int>(r.bits) == bits) return r.type;
    return std::nullopt;
}

std::optional<KeyType> rsa_key_type_for_bytes(size_t modulus_bytes) noexcept {
    for (const auto& r : kKeyTypes)
        if (!r.ec && r.bits == modulus_bytes * 8) return r.type;
    return std::nullopt;
}

}  // namespace keyward
