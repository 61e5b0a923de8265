#include "agent/key_backend.hpp"

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

const KeyTypeRow& row(KeyType t) noexcept {
    for (const auto& r : kKeyTypes)
        if (r.type == t) return r;
    return kKeyTypes[0];
}

}  // namespace

std::optional<KeyType> key_type_from_name(std::string_view name) noexcept {
    for (const auto& r : kKeyTypes)
        if (r.name == name) return r.type;
    return std::nullopt;
}

std::string_view key_type_name(KeyType t) noexcept { return row(t).name; }
uint32_t key_type_bits(KeyType t) noexcept { return row(t).bits; }
bool key_type_is_ec(KeyType t) noexcept { return row(t).ec; }

std::string_view device_health_name(DeviceHealth h) noexcept {
    switch (h) {
        case DeviceHealth::present: return "present";
        case DeviceHealth::removed: return "removed";
        case DeviceHealth::needs_pin: return "needs-pin";
        case DeviceHealth::error: return "error";
    }
    return "error";
}

}  // namespace keyward
