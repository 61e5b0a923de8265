// The ACME resources we read from the CA (RFC 8555 §7.1), parsed defensively: the CA's JSON
// is untrusted input, so every field is type-checked and garbage gives a clear error.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.hpp"

namespace keyward::acme {

// A JSON object from a response body (size-capped); never throws.
Result<nlohmann::json> parse_json_object(std::string_view body, std::string_view what);

struct Problem {       // RFC 7807 problem document
    std::string type;  // "urn:ietf:params:acme:error:badNonce" etc.
    std::string detail;
    std::string short_type() const;  // "badNonce"
    std::string describe() const;    // "badNonce: detail (+ subproblems)"
    std::vector<std::string> subproblems;
};
// Best effort: a body that is no problem document gives an empty type and the text as detail.
Problem parse_problem(std::string_view body);

struct Directory {
    std::string new_nonce, new_account, new_order;
    std::string revoke_cert;       // may be empty (a CA that does not revoke over ACME)
    std::string terms_of_service;  // may be empty
    bool external_account_required = false;
};
Result<Directory> parse_directory(std::string_view body);

struct Order {
    std::string status;  // pending, ready, processing, valid, invalid
    std::vector<std::string> authorizations;
    std::string finalize;
    std::string certificate;  // once valid
    std::optional<Problem> error;
};
Result<Order> parse_order(std::string_view body);

struct Challenge {
    std::string type, url, token, status;
    std::optional<Problem> error;
};

struct Authorization {
    std::string status;  // pending, valid, invalid, deactivated, expired, revoked
    std::string identifier_type, identifier_value;
    bool wildcard = false;
    std::vector<Challenge> challenges;
};
Result<Authorization> parse_authorization(std::string_view body);

Result<Challenge> parse_challenge(std::string_view body);

}  // namespace keyward::acme
