#include "agent/lifecycle/acme/acme_objects.hpp"

namespace keyward::acme {

namespace {

using json = nlohmann::json;

constexpr size_t kMaxJson = 256 * 1024;

Status bad(std::string_view what, const std::string& why) {
    return Status{ErrorCode::protocol_error, "the ACME server sent a bad " + std::string(what) + ": " + why};
}

// nullopt when absent; error text in `why` when present with the wrong type.
bool get_string(const json& obj, const char* key, std::string& out, bool required, std::string& why) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) {
        if (required) why = std::string("\"") + key + "\" is missing";
        return !required;
    }
    if (!it->is_string()) {
        why = std::string("\"") + key + "\" is not a string";
        return false;
    }
    out = it->get_ref<const std::string&>();
    if (out.size() > 4096) {
        why = std::string("\"") + key + "\" is too long";
        return false;
    }
    return true;
}

std::optional<Problem> problem_from(const json& obj) {
    if (!obj.is_object()) return std::nullopt;
    Problem p;
    std::string why;
    get_string(obj, "type", p.type, false, why);
    get_string(obj, "detail", p.detail, false, why);
    auto sub = obj.find("subproblems");
    if (sub != obj.end() && sub->is_array()) {
        for (const json& s : *sub) {
            if (!s.is_object()) continue;
            std::string d, t, who;
            get_string(s, "detail", d, false, why);
            get_string(s, "type", t, false, why);
            auto id = s.find("identifier");
            if (id != s.end() && id->is_object()) get_string(*id, "value", who, false, why);
            p.subproblems.push_back((who.empty() ? "" : who + ": ") + d);
            if (p.subproblems.size() == 10) break;
        }
    }
    return p;
}

}  // namespace

Result<json> parse_json_object(std::string_view body, std::string_view what) {
    if (body.size() > kMaxJson) return bad(what, "larger than " + std::to_string(kMaxJson) + " bytes");
    json doc = json::parse(body.begin(), body.end(), nullptr, false);
    if (doc.is_discarded()) return bad(what, "not JSON");
    if (!doc.is_object()) return bad(what, "not a JSON object");
    return doc;
}

std::string Problem::short_type() const {
    constexpr std::string_view prefix = "urn:ietf:params:acme:error:";
    if (type.rfind(prefix, 0) == 0) return type.substr(prefix.size());
    return type;
}

std::string Problem::describe() const {
    std::string out = short_type();
    if (!detail.empty()) out += (out.empty() ? "" : ": ") + detail;
    for (const std::string& s : subproblems) out += "; " + s;
    if (out.empty()) out = "no details";
    return out;
}

Problem parse_problem(std::string_view body) {
    if (body.size() <= kMaxJson) {
        json doc = json::parse(body.begin(), body.end(), nullptr, false);
        if (!doc.is_discarded()) {
            if (auto p = problem_from(doc)) return *p;
        }
    }
    Problem p;
    std::string text(body.substr(0, 200));
    for (char& c : text)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = ' ';
    p.detail = text;
    return p;
}

Result<Directory> parse_directory(std::string_view body) {
    Result<json> doc = parse_json_object(body, "directory");
    if (!doc.ok()) return doc.status();
    Directory d;
    std::string why;
    if (!get_string(doc.value(), "newNonce", d.new_nonce, true, why) ||
        !get_string(doc.value(), "newAccount", d.new_account, true, why) ||
        !get_string(doc.value(), "newOrder", d.new_order, true, why))
        return bad("directory", why);
    if (!get_string(doc.value(), "revokeCert", d.revoke_cert, false, why)) return bad("directory", why);
    auto meta = doc.value().find("meta");
    if (meta != doc.value().end() && meta->is_object()) {
        get_string(*meta, "termsOfService", d.terms_of_service, false, why);
        auto ear = meta->find("externalAccountRequired");
        d.external_account_required = ear != meta->end() && ear->is_boolean() && ear->get<bool>();
    }
    return d;
}

Result<Order> parse_order(std::string_view body) {
    Result<json> doc = parse_json_object(body, "order");
    if (!doc.ok()) return doc.status();
    const json& o = doc.value();
    Order order;
    std::string why;
    if (!get_string(o, "status", order.status, true, why) || !get_string(o, "finalize", order.finalize, true, why) ||
        !get_string(o, "certificate", order.certificate, false, why))
        return bad("order", why);
    auto authz = o.find("authorizations");
    if (authz == o.end() || !authz->is_array()) return bad("order", "\"authorizations\" is not a list");
    if (authz->size() > 100) return bad("order", "too many authorizations");
    for (const json& a : *authz) {
        if (!a.is_string()) return bad("order", "an authorization URL is not a string");
        order.authorizations.push_back(a.get<std::string>());
    }
    if (auto e = o.find("error"); e != o.end()) order.error = problem_from(*e);
    return order;
}

Result<Challenge> parse_challenge_json(const json& c) {
    if (!c.is_object()) return bad("challenge", "not an object");
    Challenge ch;
    std::string why;
    if (!get_string(c, "type", ch.type, true, why) || !get_string(c, "url", ch.url, true, why) ||
        !get_string(c, "status", ch.status, true, why) || !get_string(c, "token", ch.token, false, why))
        return bad("challenge", why);
    if (auto e = c.find("error"); e != c.end()) ch.error = problem_from(*e);
    return ch;
}

Result<Challenge> parse_challenge(std::string_view body) {
    Result<json> doc = parse_json_object(body, "challenge");
    if (!doc.ok()) return doc.status();
    return parse_challenge_json(doc.value());
}

Result<Authorization> parse_authorization(std::string_view body) {
    Result<json> doc = parse_json_object(body, "authorization");
    if (!doc.ok()) return doc.status();
    const json& a = doc.value();
    Authorization authz;
    std::string why;
    if (!get_string(a, "status", authz.status, true, why)) return bad("authorization", why);
    auto id = a.find("identifier");
    if (id == a.end() || !id->is_object()) return bad("authorization", "\"identifier\" is missing");
    if (!get_string(*id, "type", authz.identifier_type, true, why) ||
        !get_string(*id, "value", authz.identifier_value, true, why))
        return bad("authorization", "identifier: " + why);
    auto wc = a.find("wildcard");
    authz.wildcard = wc != a.end() && wc->is_boolean() && wc->get<bool>();
    auto chs = a.find("challenges");
    if (chs == a.end() || !chs->is_array()) return bad("authorization", "\"challenges\" is not a list");
    if (chs->size() > 50) return bad("authorization", "too many challenges");
    for (const json& c : *chs) {
        Result<Challenge> ch = parse_challenge_json(c);
        if (!ch.ok()) return ch.status();
        authz.challenges.push_back(std::move(ch.value()));
    }
    return authz;
}

}  // namespace keyward::acme
