// The time of one card signature (RSA PKCS#1 v1.5, SHA-256 digest) through keywardd
// (libkeyward-client, one connection) against OpenSC's PKCS#11 module called directly
// (one logged-in session, C_SignInit + C_Sign), both in this process, after one warm-up
// each. Prints "agent_ms MEDIAN MEAN direct_ms MEDIAN MEAN".
// usage: card_latency SOCKET KEY MODULE PIN_FILE KEY_ID_HEX RUNS
#include <dlfcn.h>
#include <p11-kit/pkcs11.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "core/hex.hpp"
#include "ipc/client.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Stats {
    double median = 0, mean = 0;
};

Stats stats(std::vector<double> ms) {
    std::sort(ms.begin(), ms.end());
    return {ms[ms.size() / 2], std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size())};
}

double since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

int fail(const std::string& what) {
    std::fprintf(stderr, "card_latency: %s\n", what.c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 7) return fail("usage: card_latency SOCKET KEY MODULE PIN_FILE KEY_ID_HEX RUNS");
    const int runs = std::max(1, std::atoi(argv[6]));
    std::vector<uint8_t> digest(32, 0x5a);

    keyward::ClientOptions options;
    options.socket_path = argv[1];
    keyward::Client client(options);
    std::vector<double> agent;
    for (int i = 0; i <= runs; ++i) {
        auto t0 = Clock::now();
        auto sig = client.sign(argv[2], keyward::ipc::Scheme::rsa_pkcs1_sha256, digest);
        if (!sig.ok()) return fail("agent: " + sig.status().message);
        if (i > 0) agent.push_back(since(t0));
    }

    void* lib = dlopen(argv[3], RTLD_NOW | RTLD_LOCAL);
    if (!lib) return fail(std::string("dlopen: ") + dlerror());
    auto get_list = reinterpret_cast<CK_C_GetFunctionList>(dlsym(lib, "C_GetFunctionList"));
    CK_FUNCTION_LIST* f = nullptr;
    if (!get_list || get_list(&f) != CKR_OK) return fail("C_GetFunctionList");
    if (f->C_Initialize(nullptr) != CKR_OK) return fail("C_Initialize");
    CK_SLOT_ID slots[8];
    CK_ULONG n = 8;
    if (f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK || n == 0) return fail("no card");
    CK_SESSION_HANDLE s;
    if (f->C_OpenSession(slots[0], CKF_SERIAL_SESSION, nullptr, nullptr, &s) != CKR_OK) return fail("C_OpenSession");
    std::string pin;
    std::ifstream(argv[4]) >> pin;
    CK_RV rv = f->C_Login(s, CKU_USER, reinterpret_cast<CK_UTF8CHAR*>(pin.data()), pin.size());
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) return fail("C_Login");
    auto id = keyward::from_hex(argv[5]);
    if (!id) return fail("KEY_ID_HEX is not hex");
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_ID, id->data(), id->size()}};
    CK_OBJECT_HANDLE key;
    CK_ULONG found = 0;
    f->C_FindObjectsInit(s, tmpl, 2);
    f->C_FindObjects(s, &key, 1, &found);
    f->C_FindObjectsFinal(s);
    if (found != 1) return fail("no private key with that id");
    // SHA-256 DigestInfo (RFC 8017 §9.2 note 1), as the agent builds it.
    static const uint8_t kPrefix[19] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                        0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
    uint8_t info[sizeof kPrefix + 32];
    std::memcpy(info, kPrefix, sizeof kPrefix);
    std::memcpy(info + sizeof kPrefix, digest.data(), 32);
    std::vector<double> direct;
    for (int i = 0; i <= runs; ++i) {
        auto t0 = Clock::now();
        CK_MECHANISM mech{CKM_RSA_PKCS, nullptr, 0};
        uint8_t sig[512];
        CK_ULONG len = sizeof sig;
        if (f->C_SignInit(s, &mech, key) != CKR_OK || f->C_Sign(s, info, sizeof info, sig, &len) != CKR_OK)
            return fail("C_Sign");
        if (i > 0) direct.push_back(since(t0));
    }
    f->C_CloseSession(s);
    f->C_Finalize(nullptr);
    const Stats a = stats(agent), d = stats(direct);
    std::printf("agent_ms %.2f %.2f direct_ms %.2f %.2f\n", a.median, a.mean, d.median, d.mean);
    return 0;
}
