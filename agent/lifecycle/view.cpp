// The identity view: what `keyward identities show` prints and --json passes through
// (docs/renewal.md lists the fields).
#include <optional>

#include <nlohmann/json.hpp>

#include "pki/certificates.hpp"
#include "core/durations.hpp"
#include "agent/lifecycle/identity_config.hpp"
#include "agent/lifecycle/state.hpp"
#include "agent/lifecycle/store.hpp"

namespace keyward::lifecycle {
namespace {

using Json = nlohmann::ordered_json;

Json time_or_null(int64_t t) { return t > 0 ? Json(format_time(t)) : Json(nullptr); }

Json attempt_json(const Attempt& a) {
    if (a.time == 0 && a.outcome.empty()) return nullptr;
    return {{"time", time_or_null(a.time)}, {"outcome", a.outcome}, {"message", a.message}};
}

}  // namespace

Json identity_view(const IdentityConfig& cfg, const IdentityStore& store, const IdentityState& state,
                   std::string_view issuer_kind, std::optional<int64_t> next_renewal, int64_t now) {
    const auto current = store.current();
    const auto previous = store.previous();
    std::optional<pki::CertInfo> info;
    if (current) {
        auto described = pki::describe_pem(current->cert_pem);
        if (described.ok()) info = std::move(described.value());
    }

    Json v;
    v["name"] = cfg.name;
    v["key"] = current ? current->meta.key : cfg.key;
    v["key_type"] = cfg.key_type;
    v["subject"] = cfg.subject;
    v["sans"] = cfg.sans;
    v["issuer"] = std::string(issuer_kind);

    std::string status;
    const bool revoked = state.revoked && current && revocation_is_for(*state.revoked, current->cert_pem);
    if (!current && state.retired) status = "retired";
    else if (!current) status = state.pending && !state.pending->cookie.empty() ? "enrolling" : "not enrolled";
    else if (!info) status = "unreadable";
    else if (revoked) status = "revoked";
    else if (info->not_after <= now) status = "expired";
    else if (state.failures > 0) status = "renewal failing";
    else if (state.pending && !state.pending->cookie.empty()) status = "renewal pending";
    else status = "valid";
    v["status"] = status;

    v["not_before"] = info ? time_or_null(info->not_before) : Json(nullptr);
    v["not_after"] = info ? time_or_null(info->not_after) : Json(nullptr);
    v["not_after_unix"] = info ? Json(info->not_after) : Json(nullptr);
    v["not_before_unix"] = info ? Json(info->not_before) : Json(nullptr);
    // When the certificate in force was installed: the last enrollment or renewal that worked.
    v["last_success_unix"] = current && current->meta.created > 0 ? Json(current->meta.created) : Json(nullptr);
    v["serial"] = info ? Json(info->serial) : Json(nullptr);
    v["certificate_subject"] = info ? Json(info->subject) : Json(nullptr);
    v["certificate_issuer"] = info ? Json(info->issuer) : Json(nullptr);
    v["certificate_sans"] = info ? Json(info->sans) : Json(nullptr);
    if (next_renewal) {
        v["next_renewal"] = format_time(std::max(*next_renewal, now));
        v["next_renewal_unix"] = std::max(*next_renewal, now);
    } else {
        v["next_renewal"] = nullptr;
        v["next_renewal_unix"] = nullptr;
    }
    v["last_attempt"] = attempt_json(state.last_attempt);
    v["failures"] = state.failures;
    v["held"] = state.held;
    if (state.pending && !state.pending->cookie.empty())
        v["pending"] = {{"since", time_or_null(state.pending->since)}, {"key", state.pending->key}};
    else v["pending"] = nullptr;

    const GenerationFiles f = store.current_files();
    v["files"] = {{"cert", f.cert}, {"chain", f.chain}, {"fullchain", f.fullchain}, {"keyref", f.keyref}};
    v["dir"] = store.dir();
    v["generation"] = current ? Json(current->meta.number) : Json(nullptr);
    v["previous"] = previous && (!current || previous->meta.number != current->meta.number)
                        ? Json({{"generation", previous->meta.number}, {"key", previous->meta.key}})
                        : Json(nullptr);
    v["revocation"] = revoked || (state.retired && state.revoked) ? Json({{"serial", state.revoked->serial},
                                                                          {"time", time_or_null(state.revoked->time)},
                                                                          {"reason", state.revoked->reason},
                                                                          {"source", state.revoked->source}})
                                                                  : Json(nullptr);
    const bool checked =
        current && state.check.time != 0 && state.check.fingerprint == certificate_fingerprint(current->cert_pem);
    v["revocation_check"] = checked ? Json({{"time", time_or_null(state.check.time)},
                                            {"result", state.check.result},
                                            {"message", state.check.message},
                                            {"next", time_or_null(state.check.next)}})
                                    : Json(nullptr);
    v["hooks"] = attempt_json(state.hooks);
    Json destroy = Json::array();
    for (const auto& d : state.destroy) destroy.push_back({{"key", d.key}, {"after", time_or_null(d.after)}});
    v["keys_to_destroy"] = destroy;
    return v;
}

}  // namespace keyward::lifecycle
