#include "agent/lifecycle/state.hpp"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <nlohmann/json.hpp>

#include "core/durable_file.hpp"
#include "core/hex.hpp"
#include "pki/certificates.hpp"

namespace keyward::lifecycle {
namespace {

nlohmann::ordered_json attempt_json(const Attempt& a) {
    return {{"time", a.time}, {"outcome", a.outcome}, {"message", a.message}};
}

Attempt attempt_from(const nlohmann::json& j) {
    Attempt a;
    if (!j.is_object()) return a;
    a.time = j.value("time", int64_t{0});
    a.outcome = j.value("outcome", "");
    a.message = j.value("message", "");
    return a;
}

}  // namespace

std::string certificate_fingerprint(const std::string& cert_pem) {
    auto certs = pki::parse_certificates(cert_pem);
    if (!certs.ok() || certs->empty()) return {};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_digest(certs->front().get(), EVP_sha256(), md, &len) != 1) return {};
    return to_hex(std::span<const uint8_t>(md, len));
}

bool revocation_is_for(const Revocation& revoked, const std::string& cert_pem) {
    const std::string fp = certificate_fingerprint(cert_pem);
    return !fp.empty() && fp == revoked.fingerprint;
}

Result<IdentityState> load_state(const std::string& path) {
    auto text = files::read_file(path);
    if (!text.ok()) {
        if (text.status().code == ErrorCode::no_such_key) return IdentityState{};
        return text.status();
    }
    IdentityState s;
    try {
        auto j = nlohmann::json::parse(text.value());
        s.last_attempt = attempt_from(j.value("last_attempt", nlohmann::json::object()));
        s.failures = j.value("failures", 0);
        s.next_attempt = j.value("next_attempt", int64_t{0});
        s.held = j.value("held", false);
        if (auto p = j.find("pending"); p != j.end() && p->is_object()) {
            PendingRequest r;
            r.id = p->value("id", "");
            r.key = p->value("key", "");
            r.new_key = p->value("new_key", false);
            r.cookie = p->value("cookie", "");
            r.csr_pem = p->value("csr", "");
            r.since = p->value("since", int64_t{0});
            s.pending = r;
        }
        for (const auto& d : j.value("destroy", nlohmann::json::array()))
            s.destroy.push_back({d.value("key", ""), d.value("after", int64_t{0})});
        s.hooks_due = j.value("hooks_due", 0);
        s.hooks = attempt_from(j.value("hooks", nlohmann::json::object()));
        s.config_fingerprint = j.value("config", "");
        if (auto r = j.find("revoked"); r != j.end() && r->is_object())
            s.revoked = Revocation{r->value("serial", ""), r->value("time", int64_t{0}), r->value("reason", ""),
                                   r->value("source", ""), r->value("fingerprint", "")};
        s.retired = j.value("retired", false);
        if (auto c = j.find("revocation_check"); c != j.end() && c->is_object())
            s.check = RevocationCheck{c->value("time", int64_t{0}), c->value("result", ""), c->value("message", ""),
                                      c->value("next", int64_t{0}), c->value("fingerprint", "")};
    } catch (const std::exception& e) {
        return Status{ErrorCode::internal, path + " is damaged (" + e.what() + "); move it away to start afresh"};
    }
    return s;
}

Status save_state(const std::string& path, const IdentityState& s) {
    nlohmann::ordered_json j;
    j["last_attempt"] = attempt_json(s.last_attempt);
    j["failures"] = s.failures;
    j["next_attempt"] = s.next_attempt;
    j["held"] = s.held;
    if (s.pending)
        j["pending"] = {{"id", s.pending->id},         {"key", s.pending->key},     {"new_key", s.pending->new_key},
                        {"cookie", s.pending->cookie}, {"csr", s.pending->csr_pem}, {"since", s.pending->since}};
    j["destroy"] = nlohmann::json::array();
    for (const auto& d : s.destroy) j["destroy"].push_back({{"key", d.key}, {"after", d.after}});
    j["hooks_due"] = s.hooks_due;
    j["hooks"] = attempt_json(s.hooks);
    j["config"] = s.config_fingerprint;
    if (s.revoked)
        j["revoked"] = {{"serial", s.revoked->serial},
                        {"time", s.revoked->time},
                        {"reason", s.revoked->reason},
                        {"source", s.revoked->source},
                        {"fingerprint", s.revoked->fingerprint}};
    if (s.retired) j["retired"] = true;
    if (s.check.time != 0)
        j["revocation_check"] = {{"time", s.check.time},
                                 {"result", s.check.result},
                                 {"message", s.check.message},
                                 {"next", s.check.next},
                                 {"fingerprint", s.check.fingerprint}};
    return files::write_atomic(path, j.dump(2) + "\n", 0600);
}

}  // namespace keyward::lifecycle
