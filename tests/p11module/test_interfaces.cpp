// PKCS#11 3.0 interface discovery (p11module/interfaces.hpp): the argument checks of
// C_GetInterfaceList / C_GetInterface, and the built keyward-pkcs11.so exporting both so
// that they hand out the same function list as C_GetFunctionList.
#include <catch2/catch.hpp>

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "p11module/interfaces.hpp"

using namespace keyward::p11module;

namespace {

CK_FUNCTION_LIST v240_list() {
    CK_FUNCTION_LIST list{};
    list.version = {2, 40};
    return list;
}

CK_UTF8CHAR_PTR utf8(const char* text) { return reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(text)); }

}  // namespace

TEST_CASE("C_GetInterfaceList counts, fills and refuses a short buffer") {
    CK_FUNCTION_LIST list = v240_list();
    const Interface offered = interface_for(&list);

    SECTION("a NULL count is refused") {
        Interface out[1];
        CHECK(get_interface_list(offered, out, nullptr) == CKR_ARGUMENTS_BAD);
        CHECK(get_interface_list(offered, nullptr, nullptr) == CKR_ARGUMENTS_BAD);
    }
    SECTION("a NULL list asks for the count") {
        CK_ULONG count = 99;
        CHECK(get_interface_list(offered, nullptr, &count) == CKR_OK);
        CHECK(count == 1);
    }
    SECTION("a buffer of zero entries is too small and learns the count") {
        Interface out[1] = {{nullptr, nullptr, 77}};
        CK_ULONG count = 0;
        CHECK(get_interface_list(offered, out, &count) == CKR_BUFFER_TOO_SMALL);
        CHECK(count == 1);
        CHECK(out[0].flags == 77);  // untouched
    }
    SECTION("a big enough buffer gets the one interface") {
        Interface out[3] = {};
        CK_ULONG count = 3;
        CHECK(get_interface_list(offered, out, &count) == CKR_OK);
        CHECK(count == 1);
        CHECK(std::strcmp(reinterpret_cast<const char*>(out[0].name), "PKCS 11") == 0);
        CHECK(out[0].function_list == &list);
        CHECK(out[0].flags == 0);
        CHECK(out[1].function_list == nullptr);
    }
}

TEST_CASE("C_GetInterface answers for PKCS 11 2.40 and nothing else") {
    CK_FUNCTION_LIST list = v240_list();
    Interface offered = interface_for(&list);
    Interface* out = nullptr;

    SECTION("NULL name and version: the default interface") {
        CHECK(get_interface(offered, nullptr, nullptr, &out, 0) == CKR_OK);
        CHECK(out == &offered);
    }
    SECTION("by name, with version 2.40") {
        CK_VERSION v240{2, 40};
        CHECK(get_interface(offered, utf8("PKCS 11"), &v240, &out, 0) == CKR_OK);
        CHECK(out == &offered);
        CHECK(static_cast<CK_FUNCTION_LIST*>(out->function_list)->version.minor == 40);
    }
    SECTION("a NULL out pointer is refused") {
        CHECK(get_interface(offered, nullptr, nullptr, nullptr, 0) == CKR_ARGUMENTS_BAD);
    }
    SECTION("an unknown name is refused") {
        CHECK(get_interface(offered, utf8("Vendor keyward"), nullptr, &out, 0) == CKR_ARGUMENTS_BAD);
        CHECK(get_interface(offered, utf8("PKCS 11 "), nullptr, &out, 0) == CKR_ARGUMENTS_BAD);
        CHECK(get_interface(offered, utf8(""), nullptr, &out, 0) == CKR_ARGUMENTS_BAD);
        CHECK(out == nullptr);
    }
    SECTION("version 3.0 and older versions are refused") {
        CK_VERSION v30{3, 0};
        CHECK(get_interface(offered, utf8("PKCS 11"), &v30, &out, 0) == CKR_ARGUMENTS_BAD);
        CK_VERSION v220{2, 20};
        CHECK(get_interface(offered, nullptr, &v220, &out, 0) == CKR_ARGUMENTS_BAD);
        CHECK(out == nullptr);
    }
    SECTION("flags the interface lacks (CKF_INTERFACE_FORK_SAFE, what NSS asks for first) are refused") {
        CHECK(get_interface(offered, nullptr, nullptr, &out, 0x1) == CKR_ARGUMENTS_BAD);
    }
}

TEST_CASE("keyward-pkcs11.so exports the interface entry points") {
    const char* path = std::getenv("KEYWARD_PKCS11_MODULE");
    INFO("KEYWARD_PKCS11_MODULE names the built module (meson sets it)");
    REQUIRE(path != nullptr);
    void* handle = ::dlopen(path, RTLD_NOW | RTLD_LOCAL);
    INFO("dlopen: " << (handle ? "" : ::dlerror()));
    REQUIRE(handle != nullptr);

    using GetFunctionList = CK_RV (*)(CK_FUNCTION_LIST_PTR_PTR);
    using GetInterfaceList = CK_RV (*)(Interface*, CK_ULONG_PTR);
    using GetInterface = CK_RV (*)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, Interface**, CK_FLAGS);
    auto get_function_list = reinterpret_cast<GetFunctionList>(::dlsym(handle, "C_GetFunctionList"));
    auto get_list = reinterpret_cast<GetInterfaceList>(::dlsym(handle, "C_GetInterfaceList"));
    auto get_one = reinterpret_cast<GetInterface>(::dlsym(handle, "C_GetInterface"));
    REQUIRE(get_function_list);
    REQUIRE(get_list);
    REQUIRE(get_one);

    CK_FUNCTION_LIST_PTR functions = nullptr;
    REQUIRE(get_function_list(&functions) == CKR_OK);

    CK_ULONG count = 0;
    CHECK(get_list(nullptr, nullptr) == CKR_ARGUMENTS_BAD);
    REQUIRE(get_list(nullptr, &count) == CKR_OK);
    REQUIRE(count == 1);
    Interface listed{};
    REQUIRE(get_list(&listed, &count) == CKR_OK);
    CHECK(std::string(reinterpret_cast<const char*>(listed.name)) == "PKCS 11");
    CHECK(listed.function_list == functions);

    Interface* found = nullptr;
    REQUIRE(get_one(nullptr, nullptr, &found, 0) == CKR_OK);
    CHECK(found->function_list == functions);
    CK_VERSION v30{3, 0};
    CHECK(get_one(utf8("PKCS 11"), &v30, &found, 0) == CKR_ARGUMENTS_BAD);
    CHECK(get_one(utf8("nope"), nullptr, &found, 0) == CKR_ARGUMENTS_BAD);
    CHECK(functions->version.major == 2);
    CHECK(functions->version.minor == 40);

    // Only the three PKCS#11 entry points leave the module.
    CHECK(::dlsym(handle, "C_Initialize") == nullptr);
    ::dlclose(handle);
}
