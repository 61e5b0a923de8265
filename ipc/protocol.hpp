// The keyward wire protocol: every number that appears on the wire is named here, once.
// docs/protocol.md is the prose specification with byte-level test vectors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"
#include "core/schemes.hpp"

namespace keyward::ipc {

inline constexpr uint8_t kProtocolVersion = 1;
// Header (8 bytes) + body. Checked before anything is allocated.
inline constexpr uint32_t kMaxFrameSize = 64 * 1024;
inline constexpr size_t kLengthPrefixSize = 4;
inline constexpr size_t kHeaderSize = 8;  // version, op, status(2), request id(4)
inline constexpr uint8_t kResponseBit = 0x80;

enum class Op : uint8_t {
    hello = 1,
    status = 2,
    list_keys = 3,
    get_key = 4,
    sign = 5,
    generate_key = 6,
    delete_key = 7,
    import_key = 8,
    list_identities = 9,
    get_identity = 10,
    renew = 11,
    rollback = 12,
    doctor = 13,  // protocol 1 agents before it answer unknown_operation
    revoke = 14,  // likewise
};

std::optional<Op> op_from_byte(uint8_t b) noexcept;
std::string_view op_name(Op op) noexcept;

// TLV tags. A body is a sequence of (u16 tag, u16 length, value); tags may repeat
// (lists), and a few values are themselves TLV sequences (marked nested).
enum class Tag : uint16_t {
    message = 1,          // utf-8: error text in a failed response
    version = 2,          // u8
    name = 3,             // utf-8: key name, client or server name
    key_type = 4,         // utf-8: "ec-p256", "rsa-2048", ...
    token = 5,            // utf-8: token name
    scheme = 6,           // u16: TLS SignatureScheme code point
    digest = 7,           // bytes
    signature = 8,        // bytes
    spki = 9,             // bytes: SubjectPublicKeyInfo DER
    bits = 10,            // u32
    key = 11,             // nested: a KeyInfo
    attribute = 12,       // nested: attr_name + attr_value
    attr_name = 13,       // utf-8
    attr_value = 14,      // utf-8
    token_info = 15,      // nested: a TokenInfo
    state = 16,           // utf-8
    kind = 17,            // utf-8
    description = 18,     // utf-8
    uptime_seconds = 19,  // u64
    signatures = 20,      // u64
    max_frame = 21,       // u32
    max_in_flight = 22,   // u32
    key_count = 23,       // u32
    uid = 24,             // u32: the caller as the agent sees it
    blob = 25,            // bytes: a device-specific key file (e.g. TSS2 PRIVATE KEY PEM)
    document = 26,        // utf-8 JSON: an identity view, for people and scripts
    flags = 27,           // u8: RENEW flags (kRenewNow, kRenewRekey, kRenewCompromised), REVOKE flags
    certificate = 28,     // bytes: X.509 DER; repeated in a KeyInfo, the key's certificate first, then its chain
    reason = 29,          // utf-8: REVOKE reason ("keyCompromise", ...)
    key_use = 30,         // nested: name + signatures + failed, in a STATUS answer for admins
    failed = 31,          // u64: failed signatures
};

// The signature schemes are the project's vocabulary (core/schemes.hpp); the wire carries
// their TLS code points. Named here too so that ipc::Scheme keeps meaning what it did.
using keyward::all_schemes;
using keyward::Scheme;
using keyward::scheme_by_name;
using keyward::scheme_from_u16;
using keyward::scheme_info;
using keyward::SchemeFamily;
using keyward::SchemeInfo;

// ---- messages -------------------------------------------------------------

using keyward::Attribute;  // core/key_types.hpp

struct KeyInfo {
    std::string name;
    std::string type;  // "ec-p256", ...
    uint32_t bits = 0;
    std::string token;
    std::vector<uint8_t> spki;          // SubjectPublicKeyInfo DER
    std::vector<Scheme> schemes;        // what this key can sign with, on this device
    std::vector<Attribute> attributes;  // as read back from the device
    // GET_KEY only (LIST_KEYS leaves them out to keep pages small): the certificate of the
    // key, then its chain — from the identity whose current key this is, or stored on the
    // device next to the key (a provisioned card). Empty when there is none.
    std::vector<std::vector<uint8_t>> certificates;
    bool operator==(const KeyInfo&) const = default;
};

struct TokenInfo {
    std::string name;
    std::string kind;         // "pkcs11", "tpm"
    std::string state;        // "present", "removed", "needs-pin", "error"
    std::string description;  // model/label, for people
    bool operator==(const TokenInfo&) const = default;
};

struct HelloRequest {
    uint8_t version = kProtocolVersion;  // highest the client speaks
    std::string client;                  // free text, for logs
    bool operator==(const HelloRequest&) const = default;
};
struct HelloResponse {
    uint8_t version = kProtocolVersion;
    std::string server;
    uint32_t max_frame = kMaxFrameSize;
    uint32_t max_in_flight = 0;
    uint32_t uid = 0;
    bool operator==(const HelloResponse&) const = default;
};
// Signatures made with one key since the agent started (admins' STATUS only).
struct KeyUse {
    std::string name;
    uint64_t signatures = 0;
    uint64_t failed = 0;
    bool operator==(const KeyUse&) const = default;
};
struct StatusResponse {
    std::string server;
    uint64_t uptime_seconds = 0;
    uint64_t signatures = 0;
    uint32_t key_count = 0;
    std::vector<TokenInfo> tokens;
    std::vector<KeyUse> key_use;  // admins only: per key, by name
    bool operator==(const StatusResponse&) const = default;
};
struct KeyNameRequest {  // GET_KEY, DELETE_KEY
    std::string name;
    bool operator==(const KeyNameRequest&) const = default;
};
// LIST_KEYS answers in pages that fit a frame: a request may name the last key of the
// previous page (Tag::name); an answer with more to come names its own last key (`next`).
struct ListKeysResponse {
    std::vector<KeyInfo> keys;
    std::string next;  // empty: this was the last page
    bool operator==(const ListKeysResponse&) const = default;
};
struct SignRequest {
    std::string key;
    Scheme scheme = Scheme::ecdsa_secp256r1_sha256;
    std::vector<uint8_t> digest;
    bool operator==(const SignRequest&) const = default;
};
struct SignResponse {
    std::vector<uint8_t> signature;
    bool operator==(const SignResponse&) const = default;
};
struct GenerateKeyRequest {
    std::string name;
    std::string type;
    std::string token;  // empty: the agent's default token
    bool operator==(const GenerateKeyRequest&) const = default;
};
inline constexpr uint8_t kRenewNow = 1;
inline constexpr uint8_t kRenewRekey = 2;
inline constexpr uint8_t kRenewCompromised = 4;  // rekey; revoke the replaced certificate (keyCompromise)
struct RenewRequest {
    std::string name;  // identity
    uint8_t flags = 0;
    bool operator==(const RenewRequest&) const = default;
};
// REVOKE: the certificate in force revoked through the identity's issuer; with
// kRevokeRetire also its generations removed and its keys destroyed.
inline constexpr uint8_t kRevokeRetire = 1;
struct RevokeRequest {
    std::string name;    // identity
    std::string reason;  // empty: unspecified
    uint8_t flags = 0;
    bool operator==(const RevokeRequest&) const = default;
};
struct DocumentResponse {  // identity views (LIST_IDENTITIES, GET_IDENTITY, RENEW, ROLLBACK, REVOKE)
    std::string json;
    bool operator==(const DocumentResponse&) const = default;
};
struct ImportKeyRequest {  // a key made on the device by another tool (wrapped, still non-exportable)
    std::string name;
    std::string token;  // empty: the agent's default token
    std::vector<uint8_t> blob;
    bool operator==(const ImportKeyRequest&) const = default;
};

}  // namespace keyward::ipc
