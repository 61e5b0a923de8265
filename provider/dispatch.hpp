// Building OSSL_DISPATCH tables from C++ functions.
#pragma once

#include <openssl/core.h>

// OpenSSL stores every function as void(*)(void) and casts it back by function id.
#define KEYWARD_FN(id, fn) \
    OSSL_DISPATCH { id, reinterpret_cast<void (*)(void)>(fn) }
#define KEYWARD_FN_END \
    OSSL_DISPATCH { 0, nullptr }
