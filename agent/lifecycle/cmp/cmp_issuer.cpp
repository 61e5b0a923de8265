#include "agent/lifecycle/cmp/cmp_issuer.hpp"

#include <openssl/cmp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <openssl/x509.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <vector>

#include "pki/certificates.hpp"
#include "agent/lifecycle/cmp/cmp_config.hpp"
#include "agent/lifecycle/cmp/device_pkey.hpp"
#include "core/durations.hpp"
#include "core/log.hpp"
#include "pki/csr.hpp"
#include "core/ossl.hpp"
#include "core/hex.hpp"

namespace keyward::lifecycle {

namespace {

using cmp::CmpConfig;
using Clock = std::chrono::steady_clock;

using CtxPtr = std::unique_ptr<OSSL_CMP_CTX, ossl::Free<OSSL_CMP_CTX_free>>;
using StorePtr = std::unique_ptr<X509_STORE, ossl::Free<X509_STORE_free>>;
using ReqPtr = ossl::Req;
using NamePtr = ossl::Name;
inline void free_cert_stack(STACK_OF(X509) * s) { sk_X509_pop_free(s, X509_free); }
using CertStackPtr = std::unique_ptr<STACK_OF(X509), ossl::Free<free_cert_stack>>;

// OpenSSL's error queue, emptied: one line for people ("a; b; c") and the codes.
struct DrainedErrors {
    std::string text;
    std::vector<unsigned long> codes;

    bool has(int lib, int reason) const {
        for (unsigned long c : codes)
            if (ERR_GET_LIB(c) == lib && ERR_GET_REASON(c) == reason) return true;
        return false;
    }
};

DrainedErrors drain() {
    DrainedErrors out;
    unsigned long code;
    const char* data = nullptr;
    int flags = 0;
    while ((code = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) != 0) {
        out.codes.push_back(code);
        char buf[256];
        ERR_error_string_n(code, buf, sizeof buf);
        std::string item = ERR_reason_error_string(code) ? ERR_reason_error_string(code) : buf;
        if ((flags & ERR_TXT_STRING) && data != nullptr && *data != '\0') item += " (" + std::string(data) + ")";
        if (out.text.find(item) == std::string::npos) out.text += (out.text.empty() ? "" : "; ") + item;
    }
    return out;
}

std::string drain_errors() { return drain().text; }

Result<std::string> read_file(const std::string& path, const char* what) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return Status{ErrorCode::invalid_argument,
                      std::string("cannot read ") + what + " " + path + ": " + std::strerror(errno)};
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text;
}

Result<pki::X509Ptr> load_cert(const std::string& path, const char* what) {
    auto text = read_file(path, what);
    if (!text.ok()) return text.status();
    auto certs = pki::parse_certificates(text.value());
    if (!certs.ok() || certs->empty())
        return Status{ErrorCode::invalid_argument, std::string(what) + " " + path + " holds no PEM certificate"};
    return std::move(certs->front());
}

// The shared secret, without a trailing newline; wiped by the caller.
Result<std::string> read_secret(const std::string& path) {
    auto text = read_file(path, "secret_file");
    if (!text.ok()) return text.status();
    std::string secret = std::move(text.value());
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
    if (secret.empty()) return Status{ErrorCode::invalid_argument, "secret_file " + path + " is empty"};
    return secret;
}

Result<ReqPtr> parse_csr(const std::string& pem) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    ReqPtr req(bio != nullptr ? PEM_read_bio_X509_REQ(bio, nullptr, nullptr, nullptr) : nullptr);
    BIO_free(bio);
    if (!req) return Status{ErrorCode::invalid_argument, "the CSR does not parse"};
    return req;
}

bool self_signed(X509* cert) { return X509_check_issued(cert, cert) == X509_V_OK; }

// The intermediates from `leaf` up to (not including) a self-signed root, picked from what
// the server sent (extraCerts, caPubs); the server's own protection certificate and other
// strays are left out.
std::string intermediates_pem(X509* leaf, STACK_OF(X509) * candidates) {
    std::string pem;
    X509* at = leaf;
    for (int depth = 0; depth < 8 && candidates != nullptr; ++depth) {
        X509* parent = nullptr;
        for (int i = 0; i < sk_X509_num(candidates); ++i) {
            X509* c = sk_X509_value(candidates, i);
            if (c != at && X509_check_issued(c, at) == X509_V_OK) {
                parent = c;
                break;
            }
        }
        if (parent == nullptr || self_signed(parent)) break;
        pem += pki::to_pem(parent);
        at = parent;
    }
    return pem;
}

int log_to_agent(const char* /*func*/, const char* /*file*/, int /*line*/, OSSL_CMP_severity level, const char* msg) {
    std::string text = std::string("cmp: ") + (msg != nullptr ? msg : "");
    while (!text.empty() && text.back() == '\n') text.pop_back();
    // The lifecycle reports the outcome itself; OpenSSL's lines are detail.
    if (level <= OSSL_CMP_LOG_WARNING) log::info(text);
    else log::debug(text);
    return 1;
}

std::string random_cookie() {
    unsigned char bytes[12];
    if (RAND_bytes(bytes, sizeof bytes) != 1) return "cmp-" + std::to_string(Clock::now().time_since_epoch().count());
    return "cmp-" + to_hex(bytes);
}

int digest_nid(const std::string& name) {
    if (name == "sha384") return NID_sha384;
    if (name == "sha512") return NID_sha512;
    return NID_sha256;
}

IssueResult result_of(IssueResult::Kind kind, std::string message) {
    IssueResult r;
    r.kind = kind;
    r.message = std::move(message);
    return r;
}

// TLS to an https:// server: OpenSSL's HTTP client calls this when the connection is up
// (connect, detail: TLS wanted) and when it goes (connect == 0). The server's certificate
// must chain to tls_trusted and name the server's host.
struct TlsTransport {
    ossl::SslCtx ctx;
    std::string host;
    // tls_client_auth: the certificate in force and its device key, for this transaction.
    ossl::Cert client_cert;
    ossl::PKey client_key;
};

BIO* tls_transport(BIO* bio, void* arg, int connect, int detail) {
    auto* tls = static_cast<TlsTransport*>(arg);
    if (tls == nullptr || !tls->ctx) return bio;
    if (connect) {
        if (detail == 0) return bio;
        ossl::Ssl ssl(SSL_new(tls->ctx.get()));
        BIO* top = BIO_new(BIO_f_ssl());
        if (!ssl || top == nullptr) {
            BIO_free(top);
            return nullptr;
        }
        ASN1_OCTET_STRING* ip = a2i_IPADDRESS(tls->host.c_str());
        const bool by_address = ip != nullptr;
        ASN1_OCTET_STRING_free(ip);
        ERR_clear_error();  // a host name is no address: not an error
        const bool named = by_address ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), tls->host.c_str()) == 1
                                      : SSL_set1_host(ssl.get(), tls->host.c_str()) == 1 &&
                                            SSL_set_tlsext_host_name(ssl.get(), tls->host.c_str()) == 1;
        if (!named) {
            BIO_free(top);
            return nullptr;
        }
        if (tls->client_cert && tls->client_key &&
            (SSL_use_certificate(ssl.get(), tls->client_cert.get()) != 1 ||
             SSL_use_PrivateKey(ssl.get(), tls->client_key.get()) != 1)) {
            BIO_free(top);
            return nullptr;
        }
        SSL_set_connect_state(ssl.get());
        BIO_set_ssl(top, ssl.release(), BIO_CLOSE);
        return BIO_push(top, bio);
    }
    if (BIO_method_type(bio) != BIO_TYPE_SSL) return bio;
    (void)ERR_set_mark();
    BIO_ssl_shutdown(bio);
    BIO* below = BIO_pop(bio);
    BIO_free(bio);
    (void)ERR_pop_to_mark();
    return below;
}

// One CMP transaction: the context (nonces, transaction ID, the polling state) and the
// device keys it signs with, kept while the CA makes us wait.
struct Transaction {
    CtxPtr ctx;
    int request_type = OSSL_CMP_IR;
    std::string cookie;
    std::vector<PkeyPtr> keys;  // kept alive for the context, which holds references
};

class CmpIssuer final : public Issuer {
public:
    explicit CmpIssuer(CmpConfig cfg) : cfg_(std::move(cfg)) {}

    std::string_view kind() const noexcept override { return "cmp"; }

    IssueResult submit(const IssueRequest& request) override {
        cancel_ = request.cancel;
        open_.reset();
        ERR_clear_error();
        auto started = start(request);
        if (!started.ok()) {
            const Status& s = started.status();
            return result_of(s.code == ErrorCode::invalid_argument || s.code == ErrorCode::no_such_key
                                 ? IssueResult::Kind::misconfigured
                                 : IssueResult::Kind::unreachable,
                             s.message);
        }
        return drive(std::move(started.value()));
    }

    IssueResult poll(const IssueRequest& request) override {
        if (!open_ || open_->cookie != request.cookie) {
            // The transaction lived in a process that is gone (agent restart): its nonces
            // and transaction ID cannot be recovered, so the request is made anew.
            log::info("identity " + request.identity + ": the CMP transaction to poll is gone; requesting again");
            return submit(request);
        }
        cancel_ = request.cancel;
        ERR_clear_error();
        Transaction t = std::move(*open_);
        open_.reset();
        return drive(std::move(t));
    }

private:
    // A context for one transaction with the server: where it is, how to talk to it, whom to trust.
    Result<CtxPtr> new_context() {
        CtxPtr owned(OSSL_CMP_CTX_new(nullptr, nullptr));
        if (!owned) return Status{ErrorCode::internal, "cannot make a CMP context: " + drain_errors()};
        OSSL_CMP_CTX* ctx = owned.get();
        OSSL_CMP_CTX_set_log_cb(ctx, log_to_agent);
        if (OSSL_CMP_CTX_set1_server(ctx, cfg_.host.c_str()) != 1 || OSSL_CMP_CTX_set_serverPort(ctx, cfg_.port) != 1 ||
            OSSL_CMP_CTX_set1_serverPath(ctx, cfg_.path.c_str()) != 1 ||
            OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_MSG_TIMEOUT, static_cast<int>(cfg_.timeout.count())) != 1 ||
            OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_DIGEST_ALGNID, digest_nid(cfg_.digest)) != 1 ||
            OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_IMPLICIT_CONFIRM, cfg_.implicit_confirm ? 1 : 0) != 1 ||
            OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_POPO_METHOD, OSSL_CRMF_POPO_SIGNATURE) != 1)
            return Status{ErrorCode::internal, "cannot configure the CMP context: " + drain_errors()};

        // Without an explicit proxy OpenSSL reads http_proxy and no_proxy from the environment.
        if (cfg_.proxy && (OSSL_CMP_CTX_set1_proxy(ctx, cfg_.proxy->c_str()) != 1 ||
                           OSSL_CMP_CTX_set1_no_proxy(ctx, cfg_.no_proxy.value_or("").c_str()) != 1))
            return Status{ErrorCode::internal, "cannot set the CMP proxy: " + drain_errors()};
        if (!cfg_.proxy && cfg_.no_proxy && OSSL_CMP_CTX_set1_no_proxy(ctx, cfg_.no_proxy->c_str()) != 1)
            return Status{ErrorCode::internal, "cannot set the CMP no_proxy list: " + drain_errors()};

        if (Status s = set_server_trust(ctx); !s.ok()) return s;
        if (cfg_.tls) {
            if (Status s = prepare_tls(); !s.ok()) return s;
            if (OSSL_CMP_CTX_set_http_cb(ctx, tls_transport) != 1 || OSSL_CMP_CTX_set_http_cb_arg(ctx, &tls_) != 1)
                return Status{ErrorCode::internal, "cannot set up TLS for CMP: " + drain_errors()};
        }
        return owned;
    }

    // TLS client authentication with the certificate in force and its device key.
    void use_for_tls(X509* cert, EVP_PKEY* key) {
        if (X509_up_ref(cert) == 1) tls_.client_cert.reset(cert);
        if (EVP_PKEY_up_ref(key) == 1) tls_.client_key.reset(key);
    }

    // The TLS client context for an https:// server, made once.
    Status prepare_tls() {
        if (tls_.ctx) return {};
        ossl::SslCtx ctx(SSL_CTX_new(TLS_client_method()));
        if (!ctx || SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1)
            return Status{ErrorCode::internal, "cannot make a TLS context: " + drain_errors()};
        if (SSL_CTX_load_verify_file(ctx.get(), cfg_.tls_trusted.c_str()) != 1) {
            ERR_clear_error();
            return Status{ErrorCode::invalid_argument,
                          "tls_trusted " + cfg_.tls_trusted + ": no PEM certificates could be loaded"};
        }
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
        tls_.ctx = std::move(ctx);
        tls_.host = cfg_.host;
        return {};
    }

    Result<Transaction> start(const IssueRequest& request) {
        if (request.keys == nullptr) return Status{ErrorCode::internal, "no key access"};
        const KeyAccess& keys = *request.keys;
        Transaction t;
        auto made = new_context();
        if (!made.ok()) return made.status();
        t.ctx = std::move(made.value());
        OSSL_CMP_CTX* ctx = t.ctx.get();

        // Renewal is authenticated by what is in force, unless it can no longer vouch.
        std::optional<pki::X509Ptr> current;
        bool expired = false;
        if (!request.current_cert_pem.empty() && !request.current_key.empty()) {
            auto certs = pki::parse_certificates(request.current_cert_pem);
            if (certs.ok() && !certs->empty()) {
                current = std::move(certs->front());
                expired = X509_cmp_current_time(X509_get0_notAfter(current->get())) <= 0;
            }
        }
        tls_.client_cert.reset();
        tls_.client_key.reset();
        if (current && !expired) {
            auto pkey = make_device_pkey(keys, request.current_key);
            if (!pkey.ok()) return pkey.status();
            if (cfg_.tls_client_auth) use_for_tls(current->get(), pkey->get());
            if (OSSL_CMP_CTX_set1_oldCert(ctx, current->get()) != 1 ||
                OSSL_CMP_CTX_set1_cert(ctx, current->get()) != 1 || OSSL_CMP_CTX_set1_pkey(ctx, pkey->get()) != 1)
                return Status{ErrorCode::internal, "cannot set the current certificate: " + drain_errors()};
            t.keys.push_back(std::move(pkey.value()));
            t.request_type = OSSL_CMP_KUR;
        } else {
            if (current)
                log::notice("identity " + request.identity +
                            ": the certificate in force has expired; an initial request with the " +
                            (cfg_.has_secret() ? "shared secret" : "bootstrap certificate") + " replaces it");
            if (Status s = set_initial_credential(ctx, keys, t); !s.ok()) return s;
            t.request_type = OSSL_CMP_IR;
        }

        auto csr = parse_csr(request.csr_pem);
        if (!csr.ok()) return csr.status();
        auto new_key = make_device_pkey(keys, request.key);
        if (!new_key.ok()) return new_key.status();
        // The CSR gives the subject and extensions; the new key signs the proof of possession.
        if (OSSL_CMP_CTX_set1_p10CSR(ctx, csr->get()) != 1)
            return Status{ErrorCode::internal, "cannot set the request: " + drain_errors()};
        // set0: the context owns this reference and frees it with itself.
        if (EVP_PKEY_up_ref(new_key->get()) != 1) return Status{ErrorCode::internal, "cannot reference the new key"};
        if (OSSL_CMP_CTX_set0_newPkey(ctx, 1, new_key->get()) != 1) {
            EVP_PKEY_free(new_key->get());
            return Status{ErrorCode::internal, "cannot set the new key: " + drain_errors()};
        }
        t.keys.push_back(std::move(new_key.value()));
        t.cookie = random_cookie();
        log::info("identity " + request.identity + ": CMP " + (t.request_type == OSSL_CMP_KUR ? "kur" : "ir") + " to " +
                  cfg_.server + " for key " + request.key);
        return t;
    }

    // rr (RFC 4210 §5.3.9) for request.cert_pem, protected by that certificate and its
    // device key while it is valid, else by the initial credential (secret or bootstrap).
    RevokeResult revoke(const RevokeRequest& request) override {
        using Kind = RevokeResult::Kind;
        cancel_ = request.cancel;
        ERR_clear_error();
        if (request.keys == nullptr) return {Kind::misconfigured, "no key access"};
        auto certs = pki::parse_certificates(request.cert_pem);
        if (!certs.ok() || certs->empty()) return {Kind::misconfigured, "the certificate to revoke does not parse"};
        X509* cert = certs->front().get();
        auto made = new_context();
        if (!made.ok())
            return {made.status().code == ErrorCode::invalid_argument ? Kind::misconfigured : Kind::unreachable,
                    made.status().message};
        OSSL_CMP_CTX* ctx = made->get();
        Transaction t;  // holds the device keys for the context
        const bool valid = X509_cmp_current_time(X509_get0_notAfter(cert)) > 0;
        tls_.client_cert.reset();
        tls_.client_key.reset();
        if (valid) {
            auto pkey = make_device_pkey(*request.keys, request.key);
            if (!pkey.ok()) return {Kind::misconfigured, "key " + request.key + ": " + pkey.status().message};
            if (cfg_.tls_client_auth) use_for_tls(cert, pkey->get());
            if (OSSL_CMP_CTX_set1_cert(ctx, cert) != 1 || OSSL_CMP_CTX_set1_pkey(ctx, pkey->get()) != 1)
                return {Kind::misconfigured, "cannot set the certificate to sign with: " + drain_errors()};
            t.keys.push_back(std::move(pkey.value()));
        } else if (Status s = set_initial_credential(ctx, *request.keys, t); !s.ok()) {
            return {Kind::misconfigured, s.message};
        }
        if (OSSL_CMP_CTX_set1_oldCert(ctx, cert) != 1 ||
            OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_REVOCATION_REASON, static_cast<int>(request.reason)) != 1)
            return {Kind::misconfigured, "cannot set up the revocation request: " + drain_errors()};
        log::info("identity " + request.identity + ": CMP rr to " + cfg_.server);
        if (OSSL_CMP_exec_RR_ses(ctx) == 1) return {Kind::revoked, "revoked by the CMP server " + cfg_.server};
        const int status = OSSL_CMP_CTX_get_status(ctx);
        char buf[512] = "";
        if (status >= 0) OSSL_CMP_CTX_snprint_PKIStatus(ctx, buf, sizeof buf);
        const std::string errors = drain_errors();
        for (const PkeyPtr& key : t.keys)
            if (Status device = last_device_error(key.get()); !device.ok())
                return {Kind::unreachable, "the device could not sign for CMP: " + device.message};
        if (status == OSSL_CMP_PKISTATUS_rejection)
            return {Kind::rejected, std::string("the CMP server refused to revoke: ") + buf};
        return {Kind::unreachable, "no revocation from the CMP server " + cfg_.server +
                                       (status >= 0 ? std::string(" (") + buf + ")" : std::string()) +
                                       (errors.empty() ? "" : ": " + errors)};
    }

    Status set_server_trust(OSSL_CMP_CTX* ctx) {
        if (!cfg_.server_cert.empty()) {
            auto cert = load_cert(cfg_.server_cert, "server_cert");
            if (!cert.ok()) return cert.status();
            if (OSSL_CMP_CTX_set1_srvCert(ctx, cert->get()) != 1)
                return Status{ErrorCode::internal, "cannot pin the server certificate: " + drain_errors()};
        }
        if (!cfg_.trusted.empty()) {
            StorePtr store(X509_STORE_new());
            if (!store || X509_STORE_load_file(store.get(), cfg_.trusted.c_str()) != 1) {
                ERR_clear_error();
                return Status{ErrorCode::invalid_argument,
                              "trusted " + cfg_.trusted + ": no PEM certificates could be loaded"};
            }
            if (OSSL_CMP_CTX_set0_trustedStore(ctx, store.get()) != 1)
                return Status{ErrorCode::internal, "cannot set the trust store: " + drain_errors()};
            store.release();  // the context owns it now
        }
        if (!cfg_.recipient.empty()) {
            NamePtr name = parse_name(cfg_.recipient);
            if (!name || OSSL_CMP_CTX_set1_recipient(ctx, name.get()) != 1)
                return Status{ErrorCode::invalid_argument, "recipient " + cfg_.recipient + " is not a valid name"};
        }
        return {};
    }

    // "/CN=a/O=b", as the configuration checked it.
    static NamePtr parse_name(const std::string& text) {
        auto attributes = pki::parse_subject(text);
        if (!attributes.ok()) return nullptr;
        NamePtr name(X509_NAME_new());
        for (const auto& a : attributes.value()) {
            if (!name ||
                X509_NAME_add_entry_by_txt(name.get(), a.type.c_str(), MBSTRING_UTF8,
                                           reinterpret_cast<const unsigned char*>(a.value.c_str()), -1, -1, 0) != 1)
                return nullptr;
        }
        return name;
    }

    Status set_initial_credential(OSSL_CMP_CTX* ctx, const KeyAccess& keys, Transaction& t) {
        if (cfg_.has_secret()) {
            auto secret = read_secret(cfg_.secret_file);
            if (!secret.ok()) return secret.status();
            std::string& value = secret.value();
            const bool ok =
                OSSL_CMP_CTX_set1_referenceValue(ctx, reinterpret_cast<const unsigned char*>(cfg_.reference.data()),
                                                 static_cast<int>(cfg_.reference.size())) == 1 &&
                OSSL_CMP_CTX_set1_secretValue(ctx, reinterpret_cast<const unsigned char*>(value.data()),
                                              static_cast<int>(value.size())) == 1;
            OPENSSL_cleanse(value.data(), value.size());
            if (!ok) return Status{ErrorCode::internal, "cannot set the shared secret: " + drain_errors()};
            return {};
        }
        auto cert = load_cert(cfg_.bootstrap_cert, "bootstrap_cert");
        if (!cert.ok()) return cert.status();
        auto pkey = make_device_pkey(keys, cfg_.bootstrap_key);
        if (!pkey.ok())
            return Status{
                pkey.status().code == ErrorCode::no_such_key ? ErrorCode::invalid_argument : pkey.status().code,
                "bootstrap_key: " + pkey.status().message};
        // Checked here, before anything is sent: OpenSSL would only notice while protecting.
        if (X509_check_private_key(cert->get(), pkey->get()) != 1) {
            ERR_clear_error();
            return Status{ErrorCode::invalid_argument,
                          "bootstrap_cert " + cfg_.bootstrap_cert + " is not for the device key " + cfg_.bootstrap_key};
        }
        if (OSSL_CMP_CTX_set1_cert(ctx, cert->get()) != 1 || OSSL_CMP_CTX_set1_pkey(ctx, pkey->get()) != 1)
            return Status{ErrorCode::internal, "cannot set the bootstrap credential: " + drain_errors()};
        t.keys.push_back(std::move(pkey.value()));
        return {};
    }

    // Sends the request (or the next poll) until the CA answers, asks for a long wait, or
    // the call's time is up.
    IssueResult drive(Transaction t) {
        const auto deadline = Clock::now() + cfg_.total_timeout;
        for (;;) {
            if (is_cancelled(cancel_))
                return result_of(IssueResult::Kind::unreachable, "interrupted: the agent is stopping");
            int check_after = 0;
            const int rv = OSSL_CMP_try_certreq(t.ctx.get(), t.request_type, nullptr, &check_after);
            if (rv == 1) return issued(t);
            if (rv != -1) return failure(t);
            const auto wait = std::chrono::seconds(std::max(check_after, 1));
            if (wait <= cfg_.poll_inline_max && Clock::now() + wait < deadline) {
                sleep_unless_cancelled(wait, cancel_);
                continue;
            }
            IssueResult r = result_of(IssueResult::Kind::pending,
                                      "the CMP server asks to poll in " + format_duration(wait.count()));
            r.cookie = t.cookie;
            r.retry_after = wait;
            open_ = std::move(t);
            return r;
        }
    }

    IssueResult issued(Transaction& t) {
        OSSL_CMP_CTX* ctx = t.ctx.get();
        X509* cert = OSSL_CMP_CTX_get0_newCert(ctx);
        if (cert == nullptr) return result_of(IssueResult::Kind::unreachable, "the CMP server sent no certificate");
        CertStackPtr candidates(sk_X509_new_null());
        for (auto* list : {OSSL_CMP_CTX_get1_extraCertsIn(ctx), OSSL_CMP_CTX_get1_caPubs(ctx)}) {
            if (list == nullptr) continue;
            while (sk_X509_num(list) > 0) sk_X509_push(candidates.get(), sk_X509_shift(list));
            sk_X509_free(list);
        }
        IssueResult r = result_of(IssueResult::Kind::issued, "issued by the CMP server");
        r.cert_pem = pki::to_pem(cert);
        r.chain_pem = intermediates_pem(cert, candidates.get());
        return r;
    }

    IssueResult failure(Transaction& t) {
        OSSL_CMP_CTX* ctx = t.ctx.get();
        const int status = OSSL_CMP_CTX_get_status(ctx);
        char buf[512] = "";
        if (status >= 0) OSSL_CMP_CTX_snprint_PKIStatus(ctx, buf, sizeof buf);
        const DrainedErrors drained = drain();
        log::debug("cmp: " + drained.text);
        const bool refused_by_us = drained.has(ERR_LIB_CMP, CMP_R_CERTIFICATE_NOT_ACCEPTED);
        const std::string& errors = drained.text;
        for (const PkeyPtr& key : t.keys) {
            Status device = last_device_error(key.get());
            if (!device.ok())  // e.g. the PIN file went missing: not the CA's fault
                return result_of(IssueResult::Kind::unreachable,
                                 "the device could not sign for CMP: " + device.message);
        }
        // Before the status: refusing a certificate also records "rejection" in the context.
        if (refused_by_us)
            return result_of(IssueResult::Kind::unreachable,
                             "the CA's certificate was refused (and the CA told so): " + errors);
        if (status == OSSL_CMP_PKISTATUS_rejection)
            return result_of(IssueResult::Kind::rejected, std::string("the CMP server rejected the request: ") + buf);
        if (status < 0)
            return result_of(IssueResult::Kind::unreachable, "no usable answer from the CMP server " + cfg_.server +
                                                                 (errors.empty() ? "" : ": " + errors));
        return result_of(IssueResult::Kind::unreachable,
                         std::string("the CMP exchange failed (") + buf + ")" + (errors.empty() ? "" : ": " + errors));
    }

    CmpConfig cfg_;
    TlsTransport tls_;                    // before open_: its contexts refer to it
    std::optional<Transaction> open_;     // a transaction the CA made us wait for
    const CancelFlag* cancel_ = nullptr;  // of the call in progress
};

}  // namespace

Status check_cmp_issuer(const toml::table& issuer, const std::string& source, const std::string& prefix) {
    return cmp::check_cmp_config(issuer, source, prefix);
}

std::unique_ptr<Issuer> make_cmp_issuer(const toml::table& issuer) {
    return std::make_unique<CmpIssuer>(cmp::read_cmp_config(issuer));
}

}  // namespace keyward::lifecycle
