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
//   p11_consumer MODULE LABEL semantics         the conventions consumers rely on: secret
//                                               attributes refused, two-call sizes, C_Login a
//                                               no-op, unknown mechanisms refused
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
    EVP_PKEY_free(key.pub);
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
    EVP_PKEY_free(key.pub);
    std::printf("loop: verified=%ld last=0x%lx\n", ok, static_cast<unsigned long>(last));
    return last == CKR_OK ? 0 : 1;
}

int expect(const char* what, CK_RV got, CK_RV want) {
    if (got == want) return 0;
    std::fprintf(stderr, "%s: CKR 0x%lx, expected 0x%lx\n", what, static_cast<unsigned long>(got),
                 static_cast<unsigned long>(want));
    return 1;
}

int semantics_mode() {
    CK_SESSION_HANDLE s = 0;
    Key key;
    CK_RV rv;
    if ((rv = open_session(s)) != CKR_OK) return fail("C_OpenSession", rv);
    if ((rv = find_key(s, key)) != CKR_OK) return fail("find", rv);
    int failures = 0;
    // The private key's secret parts exist and are never revealed.
    unsigned char buf[4096];
    CK_ATTRIBUTE secret{key.ec ? CKA_VALUE : CKA_PRIVATE_EXPONENT, buf, sizeof buf};
    failures += expect("secret attribute", f->C_GetAttributeValue(s, key.handle, &secret, 1), CKR_ATTRIBUTE_SENSITIVE);
    failures += expect("secret attribute length", secret.ulValueLen, CK_UNAVAILABLE_INFORMATION);
    CK_ATTRIBUTE unknown{CKA_VENDOR_DEFINED + 77, buf, sizeof buf};
    failures +=
        expect("unknown attribute", f->C_GetAttributeValue(s, key.handle, &unknown, 1), CKR_ATTRIBUTE_TYPE_INVALID);
    // Two-call sizes: NULL gives the length, too small says so and gives nothing.
    CK_ATTRIBUTE label_attr{CKA_LABEL, nullptr, 0};
    failures += expect("label size", f->C_GetAttributeValue(s, key.handle, &label_attr, 1), CKR_OK);
    failures += expect("label length", label_attr.ulValueLen, label.size());
    label_attr.pValue = buf;
    label_attr.ulValueLen = 1;
    failures += expect("label too small", f->C_GetAttributeValue(s, key.handle, &label_attr, 1), CKR_BUFFER_TOO_SMALL);
    CK_BBOOL flag = CK_FALSE;
    CK_ATTRIBUTE extractable{CKA_EXTRACTABLE, &flag, sizeof flag};
    failures += expect("extractable", f->C_GetAttributeValue(s, key.handle, &extractable, 1), CKR_OK);
    failures += expect("extractable value", flag, CK_FALSE);
    // C_Login is accepted whatever the PIN: the agent's policy decides.
    CK_UTF8CHAR pin[] = "anything";
    failures += expect("C_Login", f->C_Login(s, CKU_USER, pin, 8), CKR_OK);
    // C_Sign with a NULL buffer gives the size and keeps the operation; too small likewise.
    CK_MECHANISM mech{key.ec ? CKM_ECDSA : CKM_SHA256_RSA_PKCS, nullptr, 0};
    unsigned char data[32] = {1, 2, 3};
    failures += expect("C_SignInit", f->C_SignInit(s, &mech, key.handle), CKR_OK);
    CK_ULONG len = 0;
    failures += expect("C_Sign size", f->C_Sign(s, data, sizeof data, nullptr, &len), CKR_OK);
    const CK_ULONG want = len;
    len = 8;
    failures += expect("C_Sign too small", f->C_Sign(s, data, sizeof data, buf, &len), CKR_BUFFER_TOO_SMALL);
    failures += expect("C_Sign too small length", len, want);
    len = sizeof buf;
    failures += expect("C_Sign", f->C_Sign(s, data, sizeof data, buf, &len), CKR_OK);
    failures += expect("C_Sign length", len, want);
    failures +=
        expect("C_Sign after the end", f->C_Sign(s, data, sizeof data, buf, &len), CKR_OPERATION_NOT_INITIALIZED);
    // A second C_SignInit while one is active is refused; mechanisms we do not offer too.
    failures += expect("C_SignInit again", f->C_SignInit(s, &mech, key.handle), CKR_OK);
    failures += expect("C_SignInit while active", f->C_SignInit(s, &mech, key.handle), CKR_OPERATION_ACTIVE);
    len = sizeof buf;
    f->C_Sign(s, data, sizeof data, buf, &len);
    CK_MECHANISM sha1{key.ec ? CKM_ECDSA_SHA1 : CKM_SHA1_RSA_PKCS, nullptr, 0};
    failures += expect("SHA-1 mechanism", f->C_SignInit(s, &sha1, key.handle), CKR_MECHANISM_INVALID);
    CK_MECHANISM raw{CKM_RSA_X_509, nullptr, 0};
    failures += expect("raw RSA", f->C_SignInit(s, &raw, key.handle), CKR_MECHANISM_INVALID);
    failures += expect("C_DecryptInit", f->C_DecryptInit(s, &raw, key.handle), CKR_FUNCTION_NOT_SUPPORTED);
    failures += expect("C_WaitForSlotEvent", f->C_WaitForSlotEvent(CKF_DONT_BLOCK, nullptr, nullptr),
                       CKR_FUNCTION_NOT_SUPPORTED);
    failures += expect("bad session", f->C_SignInit(s + 1000, &mech, key.handle), CKR_SESSION_HANDLE_INVALID);
    failures += expect("bad slot", f->C_OpenSession(99, CKF_SERIAL_SESSION, nullptr, nullptr, &s), CKR_SLOT_ID_INVALID);
    failures += expect("second C_Initialize", initialize(), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    EVP_PKEY_free(key.pub);
    std::printf("semantics: %d failures\n", failures);
    return failures == 0 ? 0 : 1;
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
    if (mode == "threads" && argc == 6) rc = threads_mode(std::atoi(argv[4]), std::atoi(argv[5]));
    else if (mode == "fork") rc = fork_mode();
    else if (mode == "semantics") rc = semantics_mode();
    else if (mode == "loop" && argc == 5) rc = loop_mode(std::atof(argv[4]));
    f->C_Finalize(nullptr);
    return rc;
}
