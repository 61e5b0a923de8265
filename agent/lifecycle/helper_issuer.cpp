#include "agent/lifecycle/helper_issuer.hpp"

#include <cstdlib>

#include "core/durations.hpp"

namespace keyward::lifecycle {
namespace {

// First line of a helper's message, trimmed and bounded, for status views.
std::string first_text(const std::string& text) {
    std::string out;
    size_t start = text.find_first_not_of(" \t\r\n");
    if (start == std::string::npos) return out;
    size_t end = text.find_first_of("\r\n", start);
    out = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (out.size() > 300) out = out.substr(0, 300) + "...";
    return out;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t nl = text.find('\n', pos);
        std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        out.push_back(line);
        if (nl == std::string::npos) break;
        pos = nl + 1;
    }
    while (!out.empty() && out.back().empty()) out.pop_back();
    return out;
}

// The exit codes that carry no answer on stdout besides a message (certmonger's
// doc/submit.txt), and what each means here.
struct FixedAnswer {
    int exit_code;
    IssueResult::Kind kind;
    const char* message;
};

constexpr FixedAnswer kFixedAnswers[] = {
    {2, IssueResult::Kind::rejected, "the CA rejected the request"},
    {3, IssueResult::Kind::unreachable, "the CA is unreachable"},
    {4, IssueResult::Kind::misconfigured, "the CA helper is not configured completely (exit code 4)"},
    {6, IssueResult::Kind::misconfigured, "the CA helper does not support this operation (exit code 6)"},
};

const FixedAnswer* fixed_answer(int exit_code) {
    for (const auto& a : kFixedAnswers)
        if (a.exit_code == exit_code) return &a;
    return nullptr;
}

class HelperIssuer final : public Issuer {
public:
    explicit HelperIssuer(std::shared_ptr<const IdentityConfig> identity) : id_(std::move(identity)) {}

    std::string_view kind() const noexcept override { return "helper"; }
    IssueResult submit(const IssueRequest& request) override { return run("SUBMIT", request); }
    IssueResult poll(const IssueRequest& request) override { return run("POLL", request); }

    // keyward's extension of the helper protocol (docs/renewal.md): certmonger has no
    // revocation operation, and its helpers answer an operation they do not know with
    // exit code 6, which reads here as "this issuer cannot revoke".
    RevokeResult revoke(const RevokeRequest& request) override {
        std::vector<std::string> env;
        for (const auto& [name, value] : id_->issuer.environment) env.push_back(name + "=" + value);
        env.push_back("CERTMONGER_OPERATION=REVOKE");
        env.push_back("CERTMONGER_CERTIFICATE=" + request.cert_pem);
        env.push_back("CERTMONGER_CA_NICKNAME=keyward");
        if (!id_->issuer.profile.empty()) env.push_back("CERTMONGER_CA_PROFILE=" + id_->issuer.profile);
        env.push_back("KEYWARD_REVOKE_REASON=" + std::string(revocation_reason_name(request.reason)));
        env.push_back("KEYWARD_REVOKE_REASON_CODE=" + std::to_string(static_cast<int>(request.reason)));
        env.push_back("KEYWARD_IDENTITY=" + id_->name);
        env.push_back("KEYWARD_KEY=" + request.key);
        const CommandOutcome outcome =
            run_command(id_->issuer.command, env, id_->issuer.timeout, 1 << 20, request.cancel);
        return interpret_helper_revoke_answer(outcome, id_->issuer.timeout);
    }

private:
    IssueResult run(const char* operation, const IssueRequest& request) {
        std::vector<std::string> env;
        for (const auto& [name, value] : id_->issuer.environment) env.push_back(name + "=" + value);
        env.push_back(std::string("CERTMONGER_OPERATION=") + operation);
        env.push_back("CERTMONGER_CSR=" + request.csr_pem);
        if (!request.current_cert_pem.empty()) env.push_back("CERTMONGER_CERTIFICATE=" + request.current_cert_pem);
        if (!request.cookie.empty()) env.push_back("CERTMONGER_CA_COOKIE=" + request.cookie);
        env.push_back("CERTMONGER_CA_NICKNAME=keyward");
        if (!id_->issuer.profile.empty()) env.push_back("CERTMONGER_CA_PROFILE=" + id_->issuer.profile);
        env.push_back("CERTMONGER_REQ_SUBJECT=" + subject_for_certmonger());
        add_sans(env);
        env.push_back("CERTMONGER_KEY_TYPE=" + std::string(id_->key_type.rfind("rsa", 0) == 0 ? "RSA" : "EC"));
        env.push_back("KEYWARD_IDENTITY=" + id_->name);
        env.push_back("KEYWARD_KEY=" + request.key);
        const CommandOutcome outcome =
            run_command(id_->issuer.command, env, id_->issuer.timeout, 1 << 20, request.cancel);
        return interpret_helper_answer(outcome, id_->issuer.timeout);
    }

    // certmonger passes the subject in RFC 4514-ish order "CN=x,O=y".
    std::string subject_for_certmonger() const {
        std::string out;
        for (auto it = id_->subject_attributes.rbegin(); it != id_->subject_attributes.rend(); ++it) {
            if (!out.empty()) out += ",";
            out += it->type + "=" + it->value;
        }
        return out;
    }

    void add_sans(std::vector<std::string>& env) const {
        std::string dns, ip, email, uri;
        auto add = [](std::string& list, const std::string& v) { list += (list.empty() ? "" : ",") + v; };
        for (const auto& san : id_->san_values) {
            switch (san.kind) {
                case pki::SanKind::dns: add(dns, san.value); break;
                case pki::SanKind::ip: add(ip, san.value); break;
                case pki::SanKind::email: add(email, san.value); break;
                case pki::SanKind::uri: add(uri, san.value); break;
            }
        }
        if (!dns.empty()) env.push_back("CERTMONGER_REQ_HOSTNAME=" + dns);
        if (!ip.empty()) env.push_back("CERTMONGER_REQ_IP_ADDRESS=" + ip);
        if (!email.empty()) env.push_back("CERTMONGER_REQ_EMAIL=" + email);
        if (!uri.empty()) env.push_back("CERTMONGER_REQ_URI=" + uri);
    }

    std::shared_ptr<const IdentityConfig> id_;
};

}  // namespace

IssueResult interpret_helper_answer(const CommandOutcome& outcome, int64_t timeout_seconds) {
    IssueResult r;
    const std::string how = describe_outcome(outcome, timeout_seconds);
    const std::string said = first_text(outcome.out.empty() ? outcome.err : outcome.out);
    auto with_said = [&](std::string text) { return said.empty() ? text : text + ": " + said; };
    if (!outcome.started) {
        r.kind = IssueResult::Kind::misconfigured;
        r.message = "the CA helper " + how;
        return r;
    }
    if (outcome.timed_out || outcome.truncated || outcome.signal || outcome.cancelled) {
        r.kind = IssueResult::Kind::unreachable;
        r.message = "the CA helper " + how;
        return r;
    }
    switch (outcome.exit_code) {
        case 0:
            r.kind = IssueResult::Kind::issued;
            r.cert_pem = outcome.out;  // certificate, possibly followed by its chain
            r.message = "issued";
            break;
        case 1: {
            r.kind = IssueResult::Kind::pending;
            auto lines = lines_of(outcome.out);
            r.cookie = lines.empty() ? std::string() : lines.front();
            r.message = "the CA asked to wait";
            break;
        }
        case 5: {
            r.kind = IssueResult::Kind::pending;
            auto lines = lines_of(outcome.out);
            if (!lines.empty()) {
                char* end = nullptr;
                const long delay = std::strtol(lines[0].c_str(), &end, 10);
                if (end != lines[0].c_str() && delay >= 0) r.retry_after = std::chrono::seconds(delay);
            }
            if (lines.size() > 1) r.cookie = lines[1];
            r.message = "the CA asked to wait " + format_duration(r.retry_after.count());
            break;
        }
        case 126:
        case 127:
            r.kind = IssueResult::Kind::misconfigured;
            r.message = with_said("the CA helper could not run (" + how + ")");
            break;
        default: {
            const FixedAnswer* fixed = fixed_answer(outcome.exit_code);
            r.kind = fixed ? fixed->kind : IssueResult::Kind::unreachable;
            r.message = with_said(fixed ? fixed->message : "the CA helper failed with " + how);
            break;
        }
    }
    return r;
}

RevokeResult interpret_helper_revoke_answer(const CommandOutcome& outcome, int64_t timeout_seconds) {
    using Kind = RevokeResult::Kind;
    const std::string how = describe_outcome(outcome, timeout_seconds);
    const std::string said = first_text(outcome.out.empty() ? outcome.err : outcome.out);
    auto with_said = [&](std::string text) { return said.empty() ? text : text + ": " + said; };
    if (!outcome.started) return {Kind::misconfigured, "the CA helper " + how};
    if (outcome.timed_out || outcome.truncated || outcome.signal || outcome.cancelled)
        return {Kind::unreachable, "the CA helper " + how};
    switch (outcome.exit_code) {
        case 0: return {Kind::revoked, with_said("revoked by the CA helper")};
        case 2: return {Kind::rejected, with_said("the CA refused to revoke")};
        case 3: return {Kind::unreachable, with_said("the CA is unreachable")};
        case 4: return {Kind::misconfigured, with_said("the CA helper is not configured completely (exit code 4)")};
        case 6:
            return {Kind::unsupported,
                    "this issuer cannot revoke: the CA helper does not support CERTMONGER_OPERATION=REVOKE (exit code "
                    "6); revoke the certificate at the CA"};
        case 126:
        case 127: return {Kind::misconfigured, with_said("the CA helper could not run (" + how + ")")};
        default: return {Kind::unreachable, with_said("the CA helper failed with " + how)};
    }
}

std::unique_ptr<Issuer> make_helper_issuer(std::shared_ptr<const IdentityConfig> identity) {
    return std::make_unique<HelperIssuer>(std::move(identity));
}

}  // namespace keyward::lifecycle
