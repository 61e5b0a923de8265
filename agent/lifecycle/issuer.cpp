// The issuer factory and the names of issue outcomes.
#include "agent/lifecycle/issuer.hpp"

#include "agent/lifecycle/helper_issuer.hpp"

namespace keyward::lifecycle {

std::unique_ptr<Issuer> make_issuer(const IssuerKinds& kinds, std::shared_ptr<const IdentityConfig> identity,
                                    const std::string& state_dir) {
    if (identity->issuer.kind == "helper") return make_helper_issuer(std::move(identity));
    for (const auto& kind : kinds)
        if (kind.name == identity->issuer.kind) return kind.make(identity->issuer.table, state_dir);
    return nullptr;
}

std::string_view issue_kind_name(IssueResult::Kind kind) noexcept {
    switch (kind) {
        case IssueResult::Kind::issued: return "issued";
        case IssueResult::Kind::pending: return "pending";
        case IssueResult::Kind::rejected: return "rejected";
        case IssueResult::Kind::unreachable: return "unreachable";
        case IssueResult::Kind::misconfigured: return "misconfigured";
    }
    return "unknown";
}

namespace {

struct ReasonName {
    RevocationReason reason;
    std::string_view name;
};
constexpr ReasonName kReasonNames[] = {
    {RevocationReason::unspecified, "unspecified"},
    {RevocationReason::key_compromise, "keyCompromise"},
    {RevocationReason::superseded, "superseded"},
    {RevocationReason::cessation_of_operation, "cessationOfOperation"},
};

}  // namespace

std::optional<RevocationReason> revocation_reason_from_name(std::string_view name) noexcept {
    for (const auto& r : kReasonNames)
        if (r.name == name) return r.reason;
    return std::nullopt;
}

std::string_view revocation_reason_name(RevocationReason reason) noexcept {
    for (const auto& r : kReasonNames)
        if (r.reason == reason) return r.name;
    return "unknown";
}

}  // namespace keyward::lifecycle
