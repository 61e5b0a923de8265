#include "core/key_backend.hpp"

namespace keyward {

std::string_view device_health_name(DeviceHealth h) noexcept {
    switch (h) {
        case DeviceHealth::present: return "present";
        case DeviceHealth::removed: return "removed";
        case DeviceHealth::needs_pin: return "needs-pin";
        case DeviceHealth::locked: return "locked";
        case DeviceHealth::error: return "error";
    }
    return "error";
}

}  // namespace keyward
