// PKCS#11 3.0's interface discovery (C_GetInterfaceList, C_GetInterface) for a v2.40 module.
// Newer consumers (NSS ≥ 3.52, p11-kit ≥ 0.23.21) look these up before C_GetFunctionList;
// answering them with exactly one interface, "PKCS 11" 2.40 carrying the module's v2.40
// function list, tells such a consumer precisely what it gets. A request for 3.0 or for
// CKF_INTERFACE_FORK_SAFE (NSS asks for that first) is refused, so the consumer falls back
// to what we have instead of calling 3.0 functions we lack or relying on a fork safety we
// do not give (a child must call C_Initialize again).
//
// Debian 12's p11-kit header is PKCS#11 2.40 and lacks the 3.0 types, so Interface mirrors
// CK_INTERFACE's layout (name, function list, flags) under a name of our own that cannot
// clash with a newer header's.
#pragma once

#include <p11-kit/pkcs11.h>

namespace keyward::p11module {

struct Interface {
    CK_UTF8CHAR_PTR name;
    CK_VOID_PTR function_list;
    CK_FLAGS flags;
};

inline constexpr char kInterfaceName[] = "PKCS 11";

// The one interface this module offers, built around `functions` (its version field is the
// interface's version).
Interface interface_for(CK_FUNCTION_LIST* functions) noexcept;

// C_GetInterfaceList: a NULL `out` asks for the count; a short buffer gets the count and
// CKR_BUFFER_TOO_SMALL; a NULL `count` is CKR_ARGUMENTS_BAD.
CK_RV get_interface_list(const Interface& offered, Interface* out, CK_ULONG* count) noexcept;

// C_GetInterface: NULL `name` and NULL `version` mean "the default" (ours); an unknown
// name, another version or flags the interface does not have are CKR_ARGUMENTS_BAD, as is
// a NULL `out`. `*out` becomes `offered`, which must live as long as the module: the caller
// keeps the pointer and never frees it.
CK_RV get_interface(Interface& offered, const CK_UTF8CHAR* name, const CK_VERSION* version, Interface** out,
                    CK_FLAGS flags) noexcept;

}  // namespace keyward::p11module
