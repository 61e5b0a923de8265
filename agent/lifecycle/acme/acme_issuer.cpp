// The ACME flow (RFC 8555 §7): directory, nonce, account, order, authorizations and
// challenges, finalize with the device-signed CSR, certificate download. One Flow object
// per submit/poll call; nothing but the account URL outlives it.
#include "agent/lifecycle/acme/acme_issuer.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <thread>

#include "agent/lifecycle/acme/account_state.hpp"
#include "agent/lifecycle/acme/acme_config.hpp"
#include "agent/lifecycle/acme/acme_objects.hpp"
#include "agent/lifecycle/acme/base64url.hpp"
#include "agent/lifecycle/acme/dns01_hook.hpp"
#include "agent/lifecycle/acme/http01_server.hpp"
#include "agent/lifecycle/acme/https_client.hpp"
#include "agent/lifecycle/acme/jws.hpp"
#include "core/ecdsa_sig.hpp"
#include "pki/certificates.hpp"
#include "pki/csr.hpp"

namespace keyward::lifecycle {

namespace {

using namespace keyward::acme;
using namespace std::chrono_literals;
using Kind = IssueResult::Kind;
using Clock = std::chrono::steady_clock;
using Fail = std::optional<IssueResult>;  // set: stop the flow with this answer

constexpr int kNonceAttempts = 5;
constexpr auto kDefaultPendingRetry = 15s;

IssueResult answer(Kind kind, std::string message, std::chrono::seconds retry_after = 0s) {
    IssueResult r;
    r.kind = kind;
    r.message = std::move(message);
    r.retry_after = retry_after;
    return r;
}

IssueResult from_transport(const Status& s) {
    return answer(s.code == ErrorCode::invalid_argument ? Kind::misconfigured : Kind::unreachable, s.message);
}

// How an error answer from the CA should be handled by the lifecycle.
IssueResult from_http_error(const HttpResponse& r, const std::string& what) {
    Problem p = parse_problem(r.body);
    std::optional<std::chrono::seconds> retry;
    if (auto h = r.header("retry-after")) retry = parse_retry_after(*h, std::chrono::system_clock::now());
    std::string type = p.short_type();
    std::string message = what + ": HTTP " + std::to_string(r.status) + " (" + p.describe() + ")";
    if (type == "rateLimited" || r.status == 429)
        return answer(Kind::unreachable, message + "; rate limited by the CA", retry.value_or(0s));
    if (r.status >= 500 || type == "serverInternal") return answer(Kind::unreachable, message, retry.value_or(0s));
    static const char* const ours[] = {"externalAccountRequired", "userActionRequired", "badSignatureAlgorithm",
                                       "invalidContact",          "unsupportedContact", "accountDoesNotExist"};
    for (const char* t : ours)
        if (type == t) return answer(Kind::misconfigured, message);
    return answer(Kind::rejected, message);
}

bool transient(ErrorCode code) {
    return code == ErrorCode::device_unavailable || code == ErrorCode::busy || code == ErrorCode::timeout ||
           code == ErrorCode::agent_unreachable || code == ErrorCode::connection_lost;
}

class Flow {
public:
    Flow(const AcmeConfig& cfg, const std::string& state_dir, KeyAccess& keys, const lifecycle::CancelFlag* cancel)
            : cfg_(cfg),
              state_dir_(state_dir),
              keys_(keys),
              deadline_(Clock::now() + cfg.timeout),
              http_(HttpsOptions{cfg.ca_file, {}, "keyward-acme/1", cfg.proxy, cfg.no_proxy, cancel}) {}

    ~Flow() {
        for (const auto& [domain, txt] : dns_published_) run_dns01_hook(cfg_.dns01_hook, "cleanup", domain, txt, 30s);
    }

    IssueResult run(const IssueRequest& request, bool polling) {
        cancel_ = request.cancel;
        Result<pki::CsrFacts> csr = pki::read_csr(request.csr_pem);
        if (!csr.ok()) return answer(Kind::misconfigured, csr.status().message);
        csr_ = std::move(csr.value());
        if (Fail f = check_identifiers()) return *f;
        if (Fail f = load_directory()) return *f;
        if (Fail f = load_account_key()) return *f;
        if (Fail f = ensure_account()) return *f;
        std::string order_url;
        Order order;
        if (polling && !request.cookie.empty()) {
            HttpResponse r;
            if (Fail f = post(request.cookie, "", r)) return *f;
            if (r.status == 200) {
                Result<Order> o = parse_order(r.body);
                if (!o.ok()) return answer(Kind::unreachable, o.status().message);
                order_url = request.cookie;
                order = std::move(o.value());
            }  // an order the CA forgot: start a new one
        }
        if (order_url.empty())
            if (Fail f = new_order(order_url, order)) return *f;
        return drive(order_url, order);
    }

    // revokeCert (RFC 8555 §7.6), signed by the account key.
    RevokeResult revoke(const RevokeRequest& request) {
        using RKind = RevokeResult::Kind;
        cancel_ = request.cancel;
        auto as_revoke = [](const IssueResult& r) {
            switch (r.kind) {
                case Kind::rejected: return RevokeResult{RKind::rejected, r.message};
                case Kind::misconfigured: return RevokeResult{RKind::misconfigured, r.message};
                default: return RevokeResult{RKind::unreachable, r.message};
            }
        };
        auto certs = pki::parse_certificates(request.cert_pem);
        if (!certs.ok() || certs->empty()) return {RKind::misconfigured, "the certificate to revoke does not parse"};
        unsigned char* der = nullptr;
        const int der_len = i2d_X509(certs->front().get(), &der);
        if (der_len <= 0) return {RKind::misconfigured, "cannot encode the certificate to revoke"};
        const std::string encoded = base64url_encode(std::span<const uint8_t>(der, static_cast<size_t>(der_len)));
        OPENSSL_free(der);
        if (Fail f = load_directory()) return as_revoke(*f);
        if (dir_.revoke_cert.empty())
            return {RKind::unsupported,
                    "this issuer cannot revoke: the ACME directory " + cfg_.directory + " names no revokeCert URL"};
        if (Fail f = load_account_key()) return as_revoke(*f);
        if (Fail f = ensure_account()) return as_revoke(*f);
        nlohmann::json payload = {{"certificate", encoded}, {"reason", static_cast<int>(request.reason)}};
        HttpResponse r;
        if (Fail f = post(dir_.revoke_cert, payload.dump(), r)) return as_revoke(*f);
        if (r.status == 200) return {RKind::revoked, "revoked by " + cfg_.directory};
        if (parse_problem(r.body).short_type() == "alreadyRevoked")
            return {RKind::revoked, "already revoked at " + cfg_.directory};
        return as_revoke(from_http_error(r, "revokeCert"));
    }

private:
    // ---- identifiers ---------------------------------------------------------
    Fail check_identifiers() {
        // A CA refuses an order that names an identifier twice.
        auto add = [&](const char* type, const std::string& value) {
            nlohmann::json id = {{"type", type}, {"value", value}};
            if (std::find(identifiers_.begin(), identifiers_.end(), id) == identifiers_.end())
                identifiers_.push_back(id);
        };
        for (const std::string& d : csr_.dns_names) add("dns", d);
        for (const std::string& ip : csr_.ip_addresses) add("ip", ip);
        if (identifiers_.empty())
            return answer(Kind::misconfigured, "the CSR names no DNS or IP subjectAltName; ACME orders need one");
        if (!csr_.common_name.empty() &&
            std::find(csr_.dns_names.begin(), csr_.dns_names.end(), csr_.common_name) == csr_.dns_names.end() &&
            std::find(csr_.ip_addresses.begin(), csr_.ip_addresses.end(), csr_.common_name) == csr_.ip_addresses.end())
            return answer(Kind::misconfigured, "the CSR's common name \"" + csr_.common_name +
                                                   "\" is not one of its subjectAltNames; ACME CAs refuse such CSRs");
        return std::nullopt;
    }

    // ---- transport -----------------------------------------------------------
    std::chrono::milliseconds left() const {
        return std::max(0ms, std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()));
    }

    Fail request(HttpRequest req, HttpResponse& out) {
        if (left() == 0ms)
            return answer(Kind::unreachable, "ACME exchange with " + cfg_.directory + " ran out of time");
        Result<HttpResponse> r = http_.request(req, std::min<std::chrono::milliseconds>(cfg_.request_timeout, left()));
        if (!r.ok()) return from_transport(r.status());
        out = std::move(r.value());
        if (auto n = out.header("replay-nonce"); n && !n->empty() && n->size() < 512) nonce_ = *n;
        return std::nullopt;
    }

    Fail get(const std::string& url, HttpResponse& out, const std::string& what) {
        HttpRequest req;
        req.url = url;
        if (Fail f = request(req, out)) return f;
        if (out.status >= 300) return from_http_error(out, what);
        return std::nullopt;
    }

    Fail fresh_nonce() {
        HttpResponse r;
        HttpRequest req;
        req.url = dir_.new_nonce;
        nonce_.clear();
        if (Fail f = request(req, r)) return f;
        if (r.status >= 300) return from_http_error(r, "newNonce");
        if (nonce_.empty()) return answer(Kind::unreachable, "the ACME server gave no Replay-Nonce");
        return std::nullopt;
    }

    Result<std::vector<uint8_t>> sign(std::string_view input) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;
        const EVP_MD* type = EVP_get_digestbyname(key_.digest.c_str());
        if (type == nullptr || EVP_Digest(input.data(), input.size(), md, &md_len, type, nullptr) != 1)
            return Status{ErrorCode::internal, "cannot hash the JWS signing input"};
        Result<std::vector<uint8_t>> sig =
            keys_.sign(cfg_.account_key, key_.scheme, std::span<const uint8_t>(md, md_len));
        if (!sig.ok()) return sig.status();
        if (key_.ec_coordinate == 0) return sig;
        return ecdsa_der_to_raw(sig.value(), key_.ec_coordinate);
    }

    // A JWS-signed POST (payload empty = POST-as-GET); retries badNonce; re-registers once
    // when the CA forgot the account. Any status is returned: callers judge it.
    Fail post(const std::string& url, const std::string& payload, HttpResponse& out, bool with_jwk = false) {
        for (int attempt = 0; attempt < kNonceAttempts; ++attempt) {
            if (nonce_.empty())
                if (Fail f = fresh_nonce()) return f;
            nlohmann::json header = {{"alg", key_.alg}, {"nonce", nonce_}, {"url", url}};
            if (with_jwk) header["jwk"] = key_.jwk;
            else header["kid"] = kid_;
            nonce_.clear();
            Result<std::string> jws = make_jws(header, payload, [this](std::string_view in) { return sign(in); });
            if (!jws.ok())
                return answer(transient(jws.status().code) ? Kind::unreachable : Kind::misconfigured,
                              "ACME account key \"" + cfg_.account_key + "\": " + jws.status().message);
            HttpRequest req;
            req.method = "POST";
            req.url = url;
            req.headers = {{"Content-Type", "application/jose+json"}};
            if (url == certificate_url_) req.headers.emplace_back("Accept", "application/pem-certificate-chain");
            req.body = std::move(jws.value());
            if (Fail f = request(req, out)) return f;
            if (out.status < 400) return std::nullopt;
            std::string type = parse_problem(out.body).short_type();
            if (type == "badNonce") continue;
            if (type == "accountDoesNotExist" && !with_jwk && !reregistered_) {
                reregistered_ = true;
                forget_account_state(state_dir_);
                if (Fail f = register_account()) return f;
                --attempt;
                continue;
            }
            return std::nullopt;
        }
        return answer(Kind::unreachable, "the ACME server kept rejecting our nonces (badNonce)");
    }

    // ---- directory, account --------------------------------------------------
    Fail load_directory() {
        HttpResponse r;
        if (Fail f = get(cfg_.directory, r, "ACME directory " + cfg_.directory)) return f;
        Result<Directory> d = parse_directory(r.body);
        if (!d.ok()) return answer(Kind::unreachable, d.status().message);
        dir_ = std::move(d.value());
        if (dir_.external_account_required)
            return answer(Kind::misconfigured,
                          "the ACME server requires external account binding, which keyward does not support");
        return std::nullopt;
    }

    Fail load_account_key() {
        Result<ipc::KeyInfo> info = keys_.describe(cfg_.account_key);
        if (!info.ok() && info.status().code == ErrorCode::no_such_key) {
            if (!keys_.generate)
                return answer(Kind::misconfigured, "ACME account key \"" + cfg_.account_key + "\" does not exist");
            info = keys_.generate(cfg_.account_key, cfg_.account_key_type, cfg_.account_key_token);
        }
        if (!info.ok())
            return answer(transient(info.status().code) ? Kind::unreachable : Kind::misconfigured,
                          "ACME account key \"" + cfg_.account_key + "\": " + info.status().message);
        Result<AccountKeyForm> form = account_key_form(info->spki);
        if (!form.ok())
            return answer(Kind::misconfigured,
                          "ACME account key \"" + cfg_.account_key + "\": " + form.status().message);
        key_ = std::move(form.value());
        return std::nullopt;
    }

    Fail ensure_account() {
        if (auto saved = load_account_state(state_dir_); saved && saved->directory == cfg_.directory &&
                                                         saved->thumbprint == key_.thumbprint && !saved->url.empty()) {
            kid_ = saved->url;
            return std::nullopt;
        }
        return register_account();
    }

    Fail register_account() {
        nlohmann::json payload = {{"termsOfServiceAgreed", cfg_.agree_terms}};
        if (!cfg_.contact.empty()) payload["contact"] = cfg_.contact;
        HttpResponse r;
        if (Fail f = post(dir_.new_account, payload.dump(), r, true)) return f;
        if (r.status != 200 && r.status != 201) return from_http_error(r, "newAccount");
        std::optional<std::string> location = r.header("location");
        if (!location || location->empty())
            return answer(Kind::unreachable, "newAccount: the ACME server gave no account URL");
        kid_ = *location;
        Status s = save_account_state(state_dir_, {cfg_.directory, key_.thumbprint, kid_});
        if (!s.ok()) return answer(Kind::misconfigured, "cannot save the ACME account: " + s.message);
        return std::nullopt;
    }

    // ---- order ---------------------------------------------------------------
    Fail new_order(std::string& url, Order& order) {
        nlohmann::json payload = {{"identifiers", identifiers_}};
        HttpResponse r;
        if (Fail f = post(dir_.new_order, payload.dump(), r)) return f;
        if (r.status != 201 && r.status != 200) return from_http_error(r, "newOrder");
        std::optional<std::string> location = r.header("location");
        if (!location || location->empty())
            return answer(Kind::unreachable, "newOrder: the ACME server gave no order URL");
        Result<Order> o = parse_order(r.body);
        if (!o.ok()) return answer(Kind::unreachable, o.status().message);
        url = *location;
        order = std::move(o.value());
        return std::nullopt;
    }

    Fail fetch_order(const std::string& url, Order& order) {
        HttpResponse r;
        if (Fail f = post(url, "", r)) return f;
        if (r.status != 200) return from_http_error(r, "order");
        Result<Order> o = parse_order(r.body);
        if (!o.ok()) return answer(Kind::unreachable, o.status().message);
        order = std::move(o.value());
        return std::nullopt;
    }

    // Sleeps before the next poll, or says "pending" when the deadline would pass.
    Fail wait_before_poll(const HttpResponse& last, int round, const std::string& order_url, const std::string& what) {
        std::chrono::milliseconds pause = std::min<std::chrono::milliseconds>(250ms * (1 << std::min(round, 4)), 5s);
        if (auto h = last.header("retry-after"))
            if (auto s = parse_retry_after(*h, std::chrono::system_clock::now()))
                pause = std::max<std::chrono::milliseconds>(*s, 100ms);
        if (pause >= left()) {
            auto retry = std::max<std::chrono::seconds>(std::chrono::duration_cast<std::chrono::seconds>(pause),
                                                        kDefaultPendingRetry);
            IssueResult p = answer(Kind::pending, what + "; asking again later", retry);
            p.cookie = order_url;
            return p;
        }
        if (!lifecycle::sleep_unless_cancelled(pause, cancel_))
            return answer(Kind::unreachable, "interrupted: the agent is stopping");
        return std::nullopt;
    }

    IssueResult drive(const std::string& order_url, Order order) {
        for (int round = 0;; ++round) {
            if (order.status == "invalid")
                return answer(Kind::rejected, "the ACME order is invalid" +
                                                  (order.error ? ": " + order.error->describe() : std::string()));
            if (order.status == "pending") {
                for (const std::string& a : order.authorizations)
                    if (Fail f = authorize(a, order_url)) return *f;
                if (Fail f = fetch_order(order_url, order)) return *f;
                if (order.status == "pending") {
                    HttpResponse none;
                    if (Fail f = wait_before_poll(none, round, order_url, "the CA has not yet validated the order"))
                        return *f;
                    if (Fail f = fetch_order(order_url, order)) return *f;
                }
                continue;
            }
            if (order.status == "ready") {
                nlohmann::json payload = {{"csr", base64url_encode(csr_.der)}};
                HttpResponse r;
                if (Fail f = post(order.finalize, payload.dump(), r)) return *f;
                if (r.status != 200) return from_http_error(r, "finalize");
                Result<Order> o = parse_order(r.body);
                if (!o.ok()) return answer(Kind::unreachable, o.status().message);
                order = std::move(o.value());
                if (order.status == "ready")
                    return answer(Kind::unreachable, "finalize: the order did not move on from \"ready\"");
                continue;
            }
            if (order.status == "processing") {
                HttpResponse r;
                if (Fail f = post(order_url, "", r)) return *f;
                if (r.status != 200) return from_http_error(r, "order");
                Result<Order> o = parse_order(r.body);
                if (!o.ok()) return answer(Kind::unreachable, o.status().message);
                order = std::move(o.value());
                if (order.status == "processing")
                    if (Fail f = wait_before_poll(r, round, order_url, "the CA is still issuing")) return *f;
                continue;
            }
            if (order.status == "valid") return download(order);
            return answer(Kind::unreachable,
                          "the ACME order has an unknown status \"" + order.status.substr(0, 40) + "\"");
        }
    }

    // ---- authorizations and challenges ---------------------------------------
    Fail authorize(const std::string& url, const std::string& order_url) {
        for (int round = 0;; ++round) {
            HttpResponse r;
            if (Fail f = post(url, "", r)) return f;
            if (r.status != 200) return from_http_error(r, "authorization");
            Result<Authorization> parsed = parse_authorization(r.body);
            if (!parsed.ok()) return answer(Kind::unreachable, parsed.status().message);
            const Authorization& authz = parsed.value();
            std::string who = authz.identifier_value;
            if (authz.status == "valid") return std::nullopt;
            const Challenge* chosen = nullptr;
            std::string offered;
            for (const Challenge& c : authz.challenges) {
                offered += (offered.empty() ? "" : ", ") + c.type;
                if (c.type == cfg_.challenge) chosen = &c;
            }
            if (authz.status != "pending") {
                std::string why;
                for (const Challenge& c : authz.challenges)
                    if (c.error) why += "; " + c.type + ": " + c.error->describe();
                return answer(Kind::rejected, "authorization of " + who + " is " + authz.status + why);
            }
            if (chosen == nullptr)
                return answer(Kind::misconfigured, "the CA offers no " + cfg_.challenge + " challenge for " + who +
                                                       " (offered: " + (offered.empty() ? "none" : offered) + ")");
            if (chosen->status == "pending" || chosen->status == "processing") {
                if (Fail f = prepare(*chosen, who)) return f;
                if (chosen->status == "pending" && !responded_.count(chosen->url)) {
                    HttpResponse cr;
                    if (Fail f = post(chosen->url, "{}", cr)) return f;
                    if (cr.status != 200) return from_http_error(cr, cfg_.challenge + " challenge for " + who);
                    responded_.insert(chosen->url);
                }
            }
            if (Fail f = wait_before_poll(r, round, order_url, "the CA is still validating " + who)) return f;
        }
    }

    Fail prepare(const Challenge& c, const std::string& domain) {
        if (c.token.empty() || !base64url_decode(c.token))
            return answer(Kind::unreachable, "the CA sent a challenge without a usable token");
        std::string key_authorization = c.token + "." + key_.thumbprint;
        if (cfg_.challenge == "http-01") {
            if (!http01_) {
                Result<std::unique_ptr<Http01Server>> s = Http01Server::start(cfg_.http01_listen);
                if (!s.ok()) return answer(Kind::misconfigured, s.status().message);
                http01_ = std::move(s.value());
            }
            http01_->add(c.token, key_authorization);
            return std::nullopt;
        }
        unsigned char md[32];
        unsigned int len = 0;
        EVP_Digest(key_authorization.data(), key_authorization.size(), md, &len, EVP_sha256(), nullptr);
        std::string txt = base64url_encode(std::span<const uint8_t>(md, len));
        for (const auto& published : dns_published_)
            if (published.first == domain && published.second == txt) return std::nullopt;
        Status s =
            run_dns01_hook(cfg_.dns01_hook, "present", domain, txt, std::min<std::chrono::milliseconds>(60s, left()));
        if (!s.ok()) return answer(s.code == ErrorCode::timeout ? Kind::unreachable : Kind::misconfigured, s.message);
        dns_published_.emplace_back(domain, txt);
        if (cfg_.dns01_wait > 0s && cfg_.dns01_wait < left() &&
            !lifecycle::sleep_unless_cancelled(std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.dns01_wait),
                                               cancel_))
            return answer(Kind::unreachable, "interrupted: the agent is stopping");
        return std::nullopt;
    }

    // ---- certificate ---------------------------------------------------------
    IssueResult download(const Order& order) {
        if (order.certificate.empty())
            return answer(Kind::unreachable, "the valid ACME order names no certificate URL");
        certificate_url_ = order.certificate;
        HttpResponse r;
        if (Fail f = post(order.certificate, "", r)) return *f;
        if (r.status != 200) return from_http_error(r, "certificate download");
        Result<std::vector<std::string>> chain = pki::parse_pem_chain(r.body);
        if (!chain.ok()) return answer(Kind::unreachable, "certificate download: " + chain.status().message);
        IssueResult out = answer(Kind::issued, "issued by " + cfg_.directory);
        out.cert_pem = chain.value()[0];
        for (size_t i = 1; i < chain.value().size(); ++i) out.chain_pem += chain.value()[i];
        return out;
    }

    const AcmeConfig& cfg_;
    const std::string& state_dir_;
    KeyAccess& keys_;
    Clock::time_point deadline_;
    HttpsClient http_;
    pki::CsrFacts csr_;
    nlohmann::json identifiers_ = nlohmann::json::array();
    Directory dir_;
    AccountKeyForm key_;
    std::string kid_;
    std::string nonce_;
    std::string certificate_url_;
    bool reregistered_ = false;
    std::set<std::string> responded_;
    std::unique_ptr<Http01Server> http01_;
    std::vector<std::pair<std::string, std::string>> dns_published_;
    const lifecycle::CancelFlag* cancel_ = nullptr;
};

class AcmeIssuer final : public Issuer {
public:
    AcmeIssuer(AcmeConfig cfg, std::string state_dir) : cfg_(std::move(cfg)), state_dir_(std::move(state_dir)) {}
    std::string_view kind() const noexcept override { return "acme"; }
    IssueResult submit(const IssueRequest& request) override { return run(request, false); }
    IssueResult poll(const IssueRequest& request) override { return run(request, true); }

    RevokeResult revoke(const RevokeRequest& request) override {
        if (request.keys == nullptr || !request.keys->describe || !request.keys->sign)
            return {RevokeResult::Kind::misconfigured, "ACME needs device access for its account key"};
        std::lock_guard lock(mutex_);
        Flow flow(cfg_, state_dir_, *request.keys, request.cancel);
        return flow.revoke(request);
    }

private:
    IssueResult run(const IssueRequest& request, bool polling) {
        if (request.keys == nullptr || !request.keys->describe || !request.keys->sign)
            return answer(Kind::misconfigured, "ACME needs device access for its account key");
        // One flow at a time per identity: the account state file and the http-01 port are shared.
        std::lock_guard lock(mutex_);
        Flow flow(cfg_, state_dir_, *request.keys, request.cancel);
        return flow.run(request, polling);
    }

    AcmeConfig cfg_;
    std::string state_dir_;
    std::mutex mutex_;
};

}  // namespace

Status check_acme_issuer(const toml::table& issuer, const std::string& source, const std::string& prefix) {
    return check_acme_config(issuer, source, prefix);
}

std::unique_ptr<Issuer> make_acme_issuer(const toml::table& issuer, const std::string& state_dir) {
    return std::make_unique<AcmeIssuer>(read_acme_config(issuer), state_dir);
}

}  // namespace keyward::lifecycle
