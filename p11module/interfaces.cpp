#include "p11module/interfaces.hpp"

#include <cstring>

namespace keyward::p11module {

Interface interface_for(CK_FUNCTION_LIST* functions) noexcept {
    // PKCS#11 declares the name non-const; consumers only read it.
    return Interface{reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(kInterfaceName)), functions, 0};
}

CK_RV get_interface_list(const Interface& offered, Interface* out, CK_ULONG* count) noexcept {
    if (!count) return CKR_ARGUMENTS_BAD;
    if (!out) {
        *count = 1;
        return CKR_OK;
    }
    if (*count < 1) {
        *count = 1;
        return CKR_BUFFER_TOO_SMALL;
    }
    out[0] = offered;
    *count = 1;
    return CKR_OK;
}

CK_RV get_interface(Interface& offered, const CK_UTF8CHAR* name, const CK_VERSION* version, Interface** out,
                    CK_FLAGS flags) noexcept {
    if (!out) return CKR_ARGUMENTS_BAD;
    if (name && std::strcmp(reinterpret_cast<const char*>(name), kInterfaceName) != 0) return CKR_ARGUMENTS_BAD;
    const auto* functions = static_cast<const CK_FUNCTION_LIST*>(offered.function_list);
    if (version && (version->major != functions->version.major || version->minor != functions->version.minor))
        return CKR_ARGUMENTS_BAD;
    if ((flags & offered.flags) != flags) return CKR_ARGUMENTS_BAD;
    *out = &offered;
    return CKR_OK;
}

}  // namespace keyward::p11module
