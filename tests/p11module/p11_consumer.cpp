// A small PKCS#11 consumer for the module's tests: loads a module the way applications do
// (dlopen + C_GetFunctionList), finds a private key by label and signs with CKM_ECDSA or
// CKM_RSA_PKCS, checking every signature with OpenSSL against the key's CKA_PUBLIC_KEY_INFO.
//
//   p11_consumer MODULE LABEL threads N COUNT   N threads, COUNT signatures each, own sessions
//   p11_consumer MODULE LABEL fork              sign, fork; the child must see
//                                               CKR_CRYPTOKI_NOT_INITIALIZED, then initialise
//                                               and sign; the parent signs again
//   p11_consumer MODULE LABEL loop SECONDS      one session, a signature every 20 ms; prints
//                                               each result's CKR as it changes (for restarts)
//
// Prints a summary line per mode; exits 0 only when everything asked for held.
#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

namespace {

CK_FUNCTION_LIST* f = nullptr;
std::string label;

constexpr unsigned char kSha256Prefix[19] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                             0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};

int fail(const char* what, CK_RV rv) {
    std::fprintf(stderr, "%s: CKR 0x%lx\n", what, static_cast<unsigned long>(rv));
    return 1;
}

CK_RV initialize() {
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    return f->C_Initialize(&args);
}

struct Key {
    CK_OBJECT_HANDLE handle = 0;
    EVP_PKEY* pub = nullptr;
    bool ec = false;
};

CK_RV open_session(CK_SESSION_HANDLE& s) { return f->C_OpenSession(1, CKF_SERIAL_SESSION, nullptr, nullptr, &s); }

CK_RV find_key(CK_SESSION_HANDLE s, Key& key) {
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, label.data(), label.size()}};
    CK_RV rv = f->C_FindObjectsInit(s, tmpl, 2);
    if (rv != CKR_OK) return rv;
    CK_ULONG n = 0;
    rv = f->C_FindObjects(s, &key.handle, 1, &n);
    f->C_FindObjectsFinal(s);
    if (rv != CKR_OK) return rv;
    if (n != 1) return CKR_KEY_HANDLE_INVALID;
    unsigned char spki[2048];
    CK_KEY_TYPE type = 0;
    CK_ATTRIBUTE attrs[] = {{CKA_PUBLIC_KEY_INFO, spki, sizeof spki}, {CKA_KEY_TYPE, &type, sizeof type}};
    if ((rv = f->C_GetAttributeValue(s, key.handle, attrs, 2)) != CKR_OK) return rv;
    const unsigned char* p = spki;
    key.pub = d2i_PUBKEY(nullptr, &p, static_cast<long>(attrs[0].ulValueLen));
    key.ec = type == CKK_EC;
    return key.pub ? CKR_OK : CKR_GENERAL_ERROR;
}

// Signs a fresh random digest and verifies the signature; CKR_OK only when it verifies.
CK_RV sign_and_verify(CK_SESSION_HANDLE s, const Key& key) {
    unsigned char digest[32];
    RAND_bytes(digest, sizeof digest);
    unsigned char input[64];
    CK_ULONG input_len = 0;
    CK_MECHANISM mech{key.ec ? CKM_ECDSA : CKM_RSA_PKCS, nullptr, 0};
    if (!key.ec) std::memcpy(input, kSha256Prefix, sizeof kSha256Prefix), input_len = sizeof kSha256Prefix;
    std::memcpy(input + input_len, digest, sizeof digest);
    input_len += sizeof digest;
    CK_RV rv = f->C_SignInit(s, &mech, key.handle);
    if (rv != CKR_OK) return rv;
    unsigned char sig[1024];
    CK_ULONG sig_len = sizeof sig;
    if ((rv = f->C_Sign(s, input, input_len, sig, &sig_len)) != CKR_OK) return rv;

    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key.pub, nullptr);
    bool ok = ctx && EVP_PKEY_verify_init(ctx) == 1 && EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1;
    if (ok && key.ec) {
        ECDSA_SIG* es = ECDSA_SIG_new();
        const CK_ULONG half = sig_len / 2;
        ECDSA_SIG_set0(es, BN_bin2bn(sig, static_cast<int>(half), nullptr),
                       BN_bin2bn(sig + half, static_cast<int>(half), nullptr));
        unsigned char* der = nullptr;
        const int der_len = i2d_ECDSA_SIG(es, &der);
        ok = der_len > 0 && EVP_PKEY_verify(ctx, der, static_cast<size_t>(der_len), digest, sizeof digest) == 1;
        OPENSSL_free(der);
        ECDSA_SIG_free(es);
    } else if (ok) {
        ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
             EVP_PKEY_verify(ctx, sig, sig_len, digest, sizeof digest) == 1;
    }
    EVP_PKEY_CTX_free(ctx);
    return ok ? CKR_OK : CKR_SIGNATURE_INVALID;
}

int threads_mode(int threads, int count) {
    std::atomic<long> good{0}, bad{0};
    std::atomic<CK_RV> first_error{CKR_OK};
    const auto started = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&] {
            CK_SESSION_HANDLE s = 0;
            Key key;
            CK_RV rv = open_session(s);
            if (rv == CKR_OK) rv = find_key(s, key);
            for (int i = 0; i < count; ++i) {
                if (rv == CKR_OK) rv = sign_and_verify(s, key);
                if (rv == CKR_OK) {
                    ++good;
                } else {
                    ++bad;
                    CK_RV expected = CKR_OK;
                    first_error.compare_exchange_strong(expected, rv);
                    rv = CKR_OK;
                }
            }
            EVP_PKEY_free(key.pub);
            f->C_CloseSession(s);
        });
    }
    for (auto& t : pool) t.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::printf("threads=%d verified=%ld failed=%ld first_error=0x%lx seconds=%.2f per_second=%.0f\n", threads,
                good.load(), bad.load(), static_cast<unsigned long>(first_error.load()), seconds, good / seconds);
    return bad == 0 && good == static_cast<long>(threads) * count ? 0 : 1;
}

int fork_mode() {
    CK_SESSION_HANDLE s = 0;
    Key key;
    CK_RV rv;
    if ((rv = open_session(s)) != CKR_OK) return fail("parent C_OpenSession", rv);
    if ((rv = find_key(s, key)) != CKR_OK) return fail("parent find", rv);
    if ((rv = sign_and_verify(s, key)) != CKR_OK) return fail("parent sign before fork", rv);
    const pid_t child = fork();
    if (child == 0) {
        CK_ULONG n = 0;
        rv = f->C_GetSlotList(CK_TRUE, nullptr, &n);
        if (rv != CKR_CRYPTOKI_NOT_INITIALIZED) _exit(fail("child C_GetSlotList before C_Initialize", rv));
        rv = f->C_Sign(s, nullptr, 0, nullptr, &n);
        if (rv != CKR_CRYPTOKI_NOT_INITIALIZED) _exit(fail("child C_Sign before C_Initialize", rv));
        if ((rv = initialize()) != CKR_OK) _exit(fail("child C_Initialize", rv));
        CK_SESSION_HANDLE cs = 0;
        Key ck;
        if ((rv = open_session(cs)) != CKR_OK) _exit(fail("child C_OpenSession", rv));
        if ((rv = find_key(cs, ck)) != CKR_OK) _exit(fail("child find", rv));
        for (int i = 0; i < 20; ++i)
            if ((rv = sign_and_verify(cs, ck)) != CKR_OK) _exit(fail("child sign", rv));
        f->C_Finalize(nullptr);
        _exit(0);
    }
    for (int i = 0; i < 20; ++i)
        if ((rv = sign_and_verify(s, key)) != CKR_OK) return fail("parent sign after fork", rv);
    int status = 0;
    waitpid(child, &status, 0);
    const bool child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    std::printf("fork: parent ok, child %s\n", child_ok ? "ok" : "FAILED");
    return child_ok ? 0 : 1;
}

int loop_mode(double seconds) {
    CK_SESSION_HANDLE s = 0;
    Key key;
    CK_RV rv;
    if ((rv = open_session(s)) != CKR_OK) return fail("C_OpenSession", rv);
    if ((rv = find_key(s, key)) != CKR_OK) return fail("find", rv);
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    CK_RV last = ~CK_RV{0};
    long ok = 0;
    while (std::chrono::steady_clock::now() < end) {
        rv = sign_and_verify(s, key);
        ok += rv == CKR_OK;
        if (rv != last) {
            std::printf("rv=0x%lx\n", static_cast<unsigned long>(rv));
            std::fflush(stdout);
            last = rv;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::printf("loop: verified=%ld last=0x%lx\n", ok, static_cast<unsigned long>(last));
    return last == CKR_OK ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s MODULE LABEL threads N COUNT | fork | loop SECONDS\n", argv[0]);
        return 2;
    }
    void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        std::fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(lib, "C_GetFunctionList"));
    if (!get || get(&f) != CKR_OK) return fail("C_GetFunctionList", CKR_GENERAL_ERROR);
    if (CK_RV rv = initialize(); rv != CKR_OK) return fail("C_Initialize", rv);
    label = argv[2];
    const std::string mode = argv[3];
    int rc = 2;
    if (mode == "threads" && argc == 6)
        rc = threads_mode(std::atoi(argv[4]), std::atoi(argv[5]));
    else if (mode == "fork")
        rc = fork_mode();
    else if (mode == "loop" && argc == 5)
        rc = loop_mode(std::atof(argv[4]));
    f->C_Finalize(nullptr);
    return rc;
}
