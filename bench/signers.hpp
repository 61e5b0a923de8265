// The signers keyward-bench-sign compares. A Signer is set up once per run and hands
// each worker thread its own ThreadSigner (its session, its client, its EVP context).
#pragma once

#include <memory>
#include <string>

#include "bench/bench_common.hpp"

namespace keyward::bench {

enum class KeyKind { ec_p256, rsa_2048 };

class ThreadSigner {
public:
    virtual ~ThreadSigner() = default;
    // One signature over the run's fixed SHA-256 digest; false (with `error`) on failure.
    virtual bool sign_once(std::string& error) = 0;
    // One signature over `digest` (32 bytes) into sig (sig_len in: its size, out: the
    // signature's); only the PKCS#11 signer has it (the ideal agent signs what it is sent).
    virtual bool sign_digest(const unsigned char* /*digest*/, unsigned char* /*sig*/, size_t& /*sig_len*/,
                             std::string& error) {
        error = "this signer cannot sign a given digest";
        return false;
    }
};

class Signer {
public:
    virtual ~Signer() = default;
    virtual std::unique_ptr<ThreadSigner> for_thread(std::string& error) = 0;
};

// direct / p11kit: a PKCS#11 module (SoftHSM2, or p11-kit-client.so with
// P11_KIT_SERVER_ADDRESS in the environment), one session per thread.
std::unique_ptr<Signer> make_pkcs11_signer(const Options& o, KeyKind kind, std::string& error);
// keyward: keyward::Client::sign; --client shared (one Client, like the provider) or per-thread.
std::unique_ptr<Signer> make_agent_signer(const Options& o, KeyKind kind, std::string& error);
// ideal: the ideal socket agent (bench/ideal_agent.cpp), one connection per thread.
std::unique_ptr<Signer> make_ideal_signer(const Options& o, KeyKind kind, std::string& error);
// provider: the keyward OpenSSL provider (--provider-path DIR, --key NAME): EVP_PKEY_sign
// with a key loaded from keyward:NAME, as an OpenSSL program signs with an agent key.
std::unique_ptr<Signer> make_provider_signer(const Options& o, KeyKind kind, std::string& error);
// software: an in-process OpenSSL key, the ceiling.
std::unique_ptr<Signer> make_software_signer(const Options& o, KeyKind kind, std::string& error);

// tpm: keyward's TPM backend in this process (ESAPI), --tcti T --key-dir DIR --key NAME.
std::unique_ptr<Signer> make_tpm_signer(const Options& o, KeyKind kind, std::string& error);

// The digest every signer signs: 32 fixed bytes standing in for a SHA-256 hash.
inline constexpr unsigned char kDigest[32] = {0x3a, 0x91, 0x5c, 0x07, 0xee, 0x12, 0x48, 0xb3, 0x6d, 0x20, 0x9f,
                                              0x41, 0xc8, 0x75, 0x0b, 0xd6, 0x14, 0xa9, 0x63, 0xf2, 0x88, 0x3e,
                                              0x57, 0xcd, 0x02, 0xbb, 0x96, 0x4f, 0x71, 0xe0, 0x2a, 0x5d};

}  // namespace keyward::bench
