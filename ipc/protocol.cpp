#include "ipc/protocol.hpp"

namespace keyward::ipc {

std::optional<Op> op_from_byte(uint8_t b) noexcept {
    if (b >= static_cast<uint8_t>(Op::hello) && b <= static_cast<uint8_t>(Op::revoke)) return static_cast<Op>(b);
    return std::nullopt;
}

std::string_view op_name(Op op) noexcept {
    switch (op) {
        case Op::hello: return "hello";
        case Op::status: return "status";
        case Op::list_keys: return "list_keys";
        case Op::get_key: return "get_key";
        case Op::sign: return "sign";
        case Op::generate_key: return "generate_key";
        case Op::delete_key: return "delete_key";
        case Op::import_key: return "import_key";
        case Op::list_identities: return "list_identities";
        case Op::get_identity: return "get_identity";
        case Op::renew: return "renew";
        case Op::rollback: return "rollback";
        case Op::doctor: return "doctor";
        case Op::revoke: return "revoke";
    }
    return "unknown";
}

}  // namespace keyward::ipc
