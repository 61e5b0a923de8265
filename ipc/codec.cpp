#include "ipc/codec.hpp"

#include <cstring>

namespace keyward::ipc {
namespace {

uint16_t load_u16(const uint8_t* p) noexcept { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t load_u32(const uint8_t* p) noexcept {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void store_u16(uint8_t* p, uint16_t v) noexcept {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
void store_u32(uint8_t* p, uint32_t v) noexcept {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

constexpr size_t kTlvHeaderSize = 4;
constexpr size_t kMaxTlvValue = 0xffff;

Status malformed(std::string_view what) { return {ErrorCode::bad_request, "malformed message: " + std::string(what)}; }

// Typed readers of one TLV value; false when the value has the wrong size.
bool read_uint(const Tlv& t, size_t width, uint64_t& out) {
    if (t.value.size() != width) return false;
    out = 0;
    for (uint8_t b : t.value) out = (out << 8) | b;
    return true;
}
template <typename T>
bool read_as(const Tlv& t, T& out) {
    uint64_t v = 0;
    if (!read_uint(t, sizeof(T), v)) return false;
    out = static_cast<T>(v);
    return true;
}
std::string read_string(const Tlv& t) { return {reinterpret_cast<const char*>(t.value.data()), t.value.size()}; }
std::vector<uint8_t> read_bytes(const Tlv& t) { return {t.value.begin(), t.value.end()}; }

bool is(const Tlv& t, Tag tag) noexcept { return t.tag == static_cast<uint16_t>(tag); }

// Walks every TLV of `body`, handing each to `visit`, which returns false to reject the
// message (with `why` set). Unknown tags are ignored so newer peers can add fields.
template <typename Visit>
Status walk(std::span<const uint8_t> body, Visit&& visit) {
    TlvReader reader(body);
    Tlv t{};
    std::string why;
    while (reader.next(t))
        if (!visit(t, why)) return malformed(why);
    if (reader.failed()) return malformed("truncated field");
    return {};
}

// A text field of message M and its tag. The messages made of text only have one table
// each, which both directions read, so encoder and decoder cannot disagree on the layout.
template <typename M>
struct TextField {
    Tag tag;
    std::string M::*member;
    bool omit_empty = false;  // left out of the frame when empty (the agent's default applies)
};

constexpr TextField<Attribute> kAttributeFields[] = {{Tag::attr_name, &Attribute::name},
                                                     {Tag::attr_value, &Attribute::value}};
constexpr TextField<TokenInfo> kTokenInfoFields[] = {{Tag::name, &TokenInfo::name},
                                                     {Tag::kind, &TokenInfo::kind},
                                                     {Tag::state, &TokenInfo::state},
                                                     {Tag::description, &TokenInfo::description}};
constexpr TextField<KeyNameRequest> kKeyNameFields[] = {{Tag::name, &KeyNameRequest::name}};
constexpr TextField<GenerateKeyRequest> kGenerateKeyFields[] = {{Tag::name, &GenerateKeyRequest::name},
                                                                {Tag::key_type, &GenerateKeyRequest::type},
                                                                {Tag::token, &GenerateKeyRequest::token, true}};

template <typename M>
void put_text_fields(FrameWriter& w, const M& m, std::span<const TextField<M>> fields) {
    for (const auto& f : fields)
        if (!f.omit_empty || !(m.*f.member).empty()) w.put_string(f.tag, m.*f.member);
}

// Unknown tags are skipped; a repeated tag keeps its last value.
template <typename M>
Result<M> decode_text_fields(std::span<const uint8_t> body, std::span<const TextField<M>> fields) {
    M m;
    Status s = walk(body, [&](const Tlv& t, std::string&) {
        for (const auto& f : fields)
            if (is(t, f.tag)) m.*f.member = read_string(t);
        return true;
    });
    if (!s.ok()) return s;
    return m;
}

Result<Attribute> decode_attribute(std::span<const uint8_t> body) {
    auto a = decode_text_fields<Attribute>(body, kAttributeFields);
    if (a.ok() && a->name.empty()) return malformed("attribute without a name");
    return a;
}

Result<KeyInfo> decode_key_info(std::span<const uint8_t> body) {
    KeyInfo k;
    Status s = walk(body, [&](const Tlv& t, std::string& why) {
        if (is(t, Tag::name)) k.name = read_string(t);
        else if (is(t, Tag::key_type)) k.type = read_string(t);
        else if (is(t, Tag::token)) k.token = read_string(t);
        else if (is(t, Tag::spki)) k.spki = read_bytes(t);
        else if (is(t, Tag::certificate)) k.certificates.push_back(read_bytes(t));
        else if (is(t, Tag::bits)) {
            if (!read_as(t, k.bits)) return why = "bits is not a u32", false;
        } else if (is(t, Tag::scheme)) {
            uint16_t v = 0;
            if (!read_as(t, v)) return why = "scheme is not a u16", false;
            // Schemes this build does not know are skipped: a newer agent may offer more.
            if (scheme_from_u16(v)) k.schemes.push_back(static_cast<Scheme>(v));
        } else if (is(t, Tag::attribute)) {
            auto a = decode_attribute(t.value);
            if (!a.ok()) return why = a.status().message, false;
            k.attributes.push_back(std::move(a).value());
        }
        return true;
    });
    if (!s.ok()) return s;
    if (k.name.empty()) return malformed("key without a name");
    return k;
}

void put_key_info(FrameWriter& w, const KeyInfo& k) {
    w.put_string(Tag::name, k.name);
    w.put_string(Tag::key_type, k.type);
    w.put_u32(Tag::bits, k.bits);
    w.put_string(Tag::token, k.token);
    w.put_bytes(Tag::spki, k.spki);
    for (Scheme s : k.schemes) w.put_u16(Tag::scheme, static_cast<uint16_t>(s));
    for (const auto& a : k.attributes) {
        size_t mark = w.begin_nested(Tag::attribute);
        put_text_fields<Attribute>(w, a, kAttributeFields);
        w.end_nested(mark);
    }
    for (const auto& der : k.certificates) w.put_bytes(Tag::certificate, der);
}

FrameHeader request_header(uint32_t id, Op op) { return {kProtocolVersion, static_cast<uint8_t>(op), 0, id}; }
FrameHeader response_header(uint32_t id, Op op) {
    return {kProtocolVersion, static_cast<uint8_t>(static_cast<uint8_t>(op) | kResponseBit), 0, id};
}

// Runs `fill` on a new frame; on overflow removes the partial frame again.
template <typename Fill>
bool write_frame(std::vector<uint8_t>& out, const FrameHeader& header, Fill&& fill) {
    FrameWriter w(out, header);
    fill(w);
    if (w.finish()) return true;
    out.resize(w.start());
    return false;
}

}  // namespace

ParseOutcome parse_frame(std::span<const uint8_t> buffer) noexcept {
    ParseOutcome r;
    if (buffer.size() < kLengthPrefixSize) return r;
    uint32_t length = load_u32(buffer.data());
    if (length < kHeaderSize || length > kMaxFrameSize) {
        r.state = ParseState::invalid;
        r.error = {ErrorCode::bad_request, "frame length " + std::to_string(length) + " outside [" +
                                               std::to_string(kHeaderSize) + ", " + std::to_string(kMaxFrameSize) +
                                               "]"};
        return r;
    }
    if (buffer.size() - kLengthPrefixSize < length) return r;
    const uint8_t* h = buffer.data() + kLengthPrefixSize;
    r.frame.header.version = h[0];
    r.frame.header.op = h[1];
    r.frame.header.status = load_u16(h + 2);
    r.frame.header.request_id = load_u32(h + 4);
    r.frame.body = buffer.subspan(kLengthPrefixSize + kHeaderSize, length - kHeaderSize);
    r.consumed = kLengthPrefixSize + length;
    r.state = ParseState::complete;
    return r;
}

bool TlvReader::next(Tlv& out) noexcept {
    if (rest_.empty() || failed_) return false;
    if (rest_.size() < kTlvHeaderSize) {
        failed_ = true;
        return false;
    }
    uint16_t tag = load_u16(rest_.data());
    size_t len = load_u16(rest_.data() + 2);
    if (rest_.size() - kTlvHeaderSize < len) {
        failed_ = true;
        return false;
    }
    out.tag = tag;
    out.value = rest_.subspan(kTlvHeaderSize, len);
    rest_ = rest_.subspan(kTlvHeaderSize + len);
    return true;
}

FrameWriter::FrameWriter(std::vector<uint8_t>& out, const FrameHeader& header) : out_(out), start_(out.size()) {
    uint8_t h[kLengthPrefixSize + kHeaderSize] = {};
    h[4] = header.version;
    h[5] = header.op;
    store_u16(h + 6, header.status);
    store_u32(h + 8, header.request_id);
    out_.insert(out_.end(), h, h + sizeof h);
}

void FrameWriter::put_bytes(Tag tag, std::span<const uint8_t> value) {
    if (value.size() > kMaxTlvValue) {
        overflow_ = true;
        return;
    }
    uint8_t h[kTlvHeaderSize];
    store_u16(h, static_cast<uint16_t>(tag));
    store_u16(h + 2, static_cast<uint16_t>(value.size()));
    out_.insert(out_.end(), h, h + sizeof h);
    out_.insert(out_.end(), value.begin(), value.end());
}

void FrameWriter::put_string(Tag tag, std::string_view value) {
    put_bytes(tag, {reinterpret_cast<const uint8_t*>(value.data()), value.size()});
}

void FrameWriter::put_u8(Tag tag, uint8_t v) { put_bytes(tag, {&v, 1}); }
void FrameWriter::put_u16(Tag tag, uint16_t v) {
    uint8_t b[2];
    store_u16(b, v);
    put_bytes(tag, b);
}
void FrameWriter::put_u32(Tag tag, uint32_t v) {
    uint8_t b[4];
    store_u32(b, v);
    put_bytes(tag, b);
}
void FrameWriter::put_u64(Tag tag, uint64_t v) {
    uint8_t b[8];
    store_u32(b, static_cast<uint32_t>(v >> 32));
    store_u32(b + 4, static_cast<uint32_t>(v));
    put_bytes(tag, b);
}

size_t FrameWriter::begin_nested(Tag tag) {
    size_t mark = out_.size();
    uint8_t h[kTlvHeaderSize] = {};
    store_u16(h, static_cast<uint16_t>(tag));
    out_.insert(out_.end(), h, h + sizeof h);
    return mark;
}

void FrameWriter::end_nested(size_t mark) {
    size_t len = out_.size() - mark - kTlvHeaderSize;
    if (len > kMaxTlvValue) {
        overflow_ = true;
        return;
    }
    store_u16(out_.data() + mark + 2, static_cast<uint16_t>(len));
}

bool FrameWriter::finish() {
    size_t length = out_.size() - start_ - kLengthPrefixSize;
    if (overflow_ || length > kMaxFrameSize) return false;
    store_u32(out_.data() + start_, static_cast<uint32_t>(length));
    return true;
}

// ---- requests -------------------------------------------------------------

bool encode_request(std::vector<uint8_t>& out, uint32_t id, Op op) {
    return write_frame(out, request_header(id, op), [](FrameWriter&) {});
}

bool encode_request(std::vector<uint8_t>& out, uint32_t id, const HelloRequest& m) {
    return write_frame(out, request_header(id, Op::hello), [&](FrameWriter& w) {
        w.put_u8(Tag::version, m.version);
        if (!m.client.empty()) w.put_string(Tag::name, m.client);
    });
}

bool encode_request(std::vector<uint8_t>& out, uint32_t id, Op op, const KeyNameRequest& m) {
    return write_frame(out, request_header(id, op),
                       [&](FrameWriter& w) { put_text_fields<KeyNameRequest>(w, m, kKeyNameFields); });
}

bool encode_request(std::vector<uint8_t>& out, uint32_t id, const SignRequest& m) {
    return write_frame(out, request_header(id, Op::sign), [&](FrameWriter& w) {
        w.put_string(Tag::name, m.key);
        w.put_u16(Tag::scheme, static_cast<uint16_t>(m.scheme));
        w.put_bytes(Tag::digest, m.digest);
    });
}

bool encode_request(std::vector<uint8_t>& out, uint32_t id, const GenerateKeyRequest& m) {
    return write_frame(out, request_header(id, Op::generate_key),
                       [&](FrameWriter& w) { put_text_fields<GenerateKeyRequest>(w, m, kGenerateKeyFields); });
}

bool encode_request(std::vector<uint8_t>& out, uint32_t id, const ImportKeyRequest& m) {
    return write_frame(out, request_header(id, Op::import_key), [&](FrameWriter& w) {
        w.put_string(Tag::name, m.name);
        if (!m.token.empty()) w.put_string(Tag::token, m.token);
        w.put_bytes(Tag::blob, m.blob);
    });
}

bool encode_request(std::vector<uint8_t>& out, uint32_t id, const RenewRequest& m) {
    return write_frame(out, request_header(id, Op::renew), [&](FrameWriter& w) {
        w.put_string(Tag::name, m.name);
        w.put_u8(Tag::flags, m.flags);
    });
}

bool encode_request(std::vector<uint8_t>& out, uint32_t id, const RevokeRequest& m) {
    return write_frame(out, request_header(id, Op::revoke), [&](FrameWriter& w) {
        w.put_string(Tag::name, m.name);
        if (!m.reason.empty()) w.put_string(Tag::reason, m.reason);
        w.put_u8(Tag::flags, m.flags);
    });
}

Result<HelloRequest> decode_hello_request(std::span<const uint8_t> body) {
    HelloRequest m;
    bool have_version = false;
    Status s = walk(body, [&](const Tlv& t, std::string& why) {
        if (is(t, Tag::version)) {
            if (!read_as(t, m.version)) return why = "version is not a u8", false;
            have_version = true;
        } else if (is(t, Tag::name)) {
            m.client = read_string(t);
        }
        return true;
    });
    if (!s.ok()) return s;
    if (!have_version) return malformed("hello without a version");
    return m;
}

Result<KeyNameRequest> decode_key_name_request(std::span<const uint8_t> body) {
    auto m = decode_text_fields<KeyNameRequest>(body, kKeyNameFields);
    if (m.ok() && m->name.empty()) return malformed("no key name");
    return m;
}

Result<SignRequest> decode_sign_request(std::span<const uint8_t> body) {
    SignRequest m;
    bool have_scheme = false;
    Status s = walk(body, [&](const Tlv& t, std::string& why) {
        if (is(t, Tag::name)) {
            m.key = read_string(t);
        } else if (is(t, Tag::scheme)) {
            uint16_t v = 0;
            if (!read_as(t, v)) return why = "scheme is not a u16", false;
            m.scheme = static_cast<Scheme>(v);  // validity is the agent's call: unsupported_scheme
            have_scheme = true;
        } else if (is(t, Tag::digest)) {
            m.digest = read_bytes(t);
        }
        return true;
    });
    if (!s.ok()) return s;
    if (m.key.empty()) return malformed("no key name");
    if (!have_scheme) return malformed("no scheme");
    if (m.digest.empty()) return malformed("no digest");
    return m;
}

Result<GenerateKeyRequest> decode_generate_key_request(std::span<const uint8_t> body) {
    auto m = decode_text_fields<GenerateKeyRequest>(body, kGenerateKeyFields);
    if (m.ok() && m->name.empty()) return malformed("no key name");
    if (m.ok() && m->type.empty()) return malformed("no key type");
    return m;
}

Result<ImportKeyRequest> decode_import_key_request(std::span<const uint8_t> body) {
    ImportKeyRequest m;
    Status s = walk(body, [&](const Tlv& t, std::string&) {
        if (is(t, Tag::name)) m.name = read_string(t);
        else if (is(t, Tag::token)) m.token = read_string(t);
        else if (is(t, Tag::blob)) m.blob = read_bytes(t);
        return true;
    });
    if (!s.ok()) return s;
    if (m.name.empty()) return malformed("no key name");
    if (m.blob.empty()) return malformed("no key blob");
    return m;
}

Result<RenewRequest> decode_renew_request(std::span<const uint8_t> body) {
    RenewRequest m;
    Status s = walk(body, [&](const Tlv& t, std::string& why) {
        if (is(t, Tag::name)) m.name = read_string(t);
        else if (is(t, Tag::flags) && !read_as(t, m.flags)) return why = "flags is not a u8", false;
        return true;
    });
    if (!s.ok()) return s;
    if (m.name.empty()) return malformed("no identity name");
    return m;
}

Result<RevokeRequest> decode_revoke_request(std::span<const uint8_t> body) {
    RevokeRequest m;
    Status s = walk(body, [&](const Tlv& t, std::string& why) {
        if (is(t, Tag::name)) m.name = read_string(t);
        else if (is(t, Tag::reason)) m.reason = read_string(t);
        else if (is(t, Tag::flags) && !read_as(t, m.flags)) return why = "flags is not a u8", false;
        return true;
    });
    if (!s.ok()) return s;
    if (m.name.empty()) return malformed("no identity name");
    return m;
}

// ---- responses ------------------------------------------------------------

bool encode_error(std::vector<uint8_t>& out, uint32_t id, uint8_t op, const Status& status) {
    FrameHeader h{kProtocolVersion, static_cast<uint8_t>(op | kResponseBit), static_cast<uint16_t>(status.code), id};
    // An error message is for people; cut it rather than fail to report the error.
    std::string_view msg = status.message;
    if (msg.size() > 1024) msg = msg.substr(0, 1024);
    return write_frame(out, h, [&](FrameWriter& w) { w.put_string(Tag::message, msg); });
}

bool encode_empty_response(std::vector<uint8_t>& out, uint32_t id, Op op) {
    return write_frame(out, response_header(id, op), [](FrameWriter&) {});
}

bool encode_response(std::vector<uint8_t>& out, uint32_t id, const HelloResponse& m) {
    return write_frame(out, response_header(id, Op::hello), [&](FrameWriter& w) {
        w.put_u8(Tag::version, m.version);
        w.put_string(Tag::name, m.server);
        w.put_u32(Tag::max_frame, m.max_frame);
        w.put_u32(Tag::max_in_flight, m.max_in_flight);
        w.put_u32(Tag::uid, m.uid);
    });
}

bool encode_response(std::vector<uint8_t>& out, uint32_t id, const StatusResponse& m) {
    return write_frame(out, response_header(id, Op::status), [&](FrameWriter& w) {
        w.put_string(Tag::name, m.server);
        w.put_u64(Tag::uptime_seconds, m.uptime_seconds);
        w.put_u64(Tag::signatures, m.signatures);
        w.put_u32(Tag::key_count, m.key_count);
        for (const auto& t : m.tokens) {
            size_t mark = w.begin_nested(Tag::token_info);
            put_text_fields<TokenInfo>(w, t, kTokenInfoFields);
            w.end_nested(mark);
        }
        for (const auto& u : m.key_use) {
            size_t mark = w.begin_nested(Tag::key_use);
            w.put_string(Tag::name, u.name);
            w.put_u64(Tag::signatures, u.signatures);
            w.put_u64(Tag::failed, u.failed);
            w.end_nested(mark);
        }
    });
}

bool encode_response(std::vector<uint8_t>& out, uint32_t id, const ListKeysResponse& m) {
    return write_frame(out, response_header(id, Op::list_keys), [&](FrameWriter& w) {
        for (const auto& k : m.keys) {
            size_t mark = w.begin_nested(Tag::key);
            put_key_info(w, k);
            w.end_nested(mark);
        }
        if (!m.next.empty()) w.put_string(Tag::name, m.next);
    });
}

bool encode_response(std::vector<uint8_t>& out, uint32_t id, Op op, const KeyInfo& m) {
    return write_frame(out, response_header(id, op), [&](FrameWriter& w) {
        size_t mark = w.begin_nested(Tag::key);
        put_key_info(w, m);
        w.end_nested(mark);
    });
}

bool encode_response(std::vector<uint8_t>& out, uint32_t id, const SignResponse& m) {
    return write_frame(out, response_header(id, Op::sign),
                       [&](FrameWriter& w) { w.put_bytes(Tag::signature, m.signature); });
}

bool encode_response(std::vector<uint8_t>& out, uint32_t id, Op op, const DocumentResponse& m) {
    // A view larger than one TLV value is split over repeated document elements.
    return write_frame(out, response_header(id, op), [&](FrameWriter& w) {
        std::string_view rest = m.json;
        do {
            std::string_view part = rest.substr(0, std::min<size_t>(rest.size(), kMaxTlvValue));
            w.put_string(Tag::document, part);
            rest.remove_prefix(part.size());
        } while (!rest.empty());
    });
}

Result<DocumentResponse> decode_document_response(std::span<const uint8_t> body) {
    DocumentResponse m;
    Status s = walk(body, [&](const Tlv& t, std::string&) {
        if (is(t, Tag::document)) m.json += read_string(t);
        return true;
    });
    if (!s.ok()) return s;
    return m;
}

Result<HelloResponse> decode_hello_response(std::span<const uint8_t> body) {
    HelloResponse m;
    bool have_version = false;
    Status s = walk(body, [&](const Tlv& t, std::string& why) {
        bool ok = true;
        if (is(t, Tag::version)) ok = have_version = read_as(t, m.version);
        else if (is(t, Tag::name)) m.server = read_string(t);
        else if (is(t, Tag::max_frame)) ok = read_as(t, m.max_frame);
        else if (is(t, Tag::max_in_flight)) ok = read_as(t, m.max_in_flight);
        else if (is(t, Tag::uid)) ok = read_as(t, m.uid);
        if (!ok) why = "hello field of the wrong size";
        return ok;
    });
    if (!s.ok()) return s;
    if (!have_version) return malformed("hello without a version");
    return m;
}

Result<StatusResponse> decode_status_response(std::span<const uint8_t> body) {
    StatusResponse m;
    Status s = walk(body, [&](const Tlv& t, std::string& why) {
        bool ok = true;
        if (is(t, Tag::name)) m.server = read_string(t);
        else if (is(t, Tag::uptime_seconds)) ok = read_as(t, m.uptime_seconds);
        else if (is(t, Tag::signatures)) ok = read_as(t, m.signatures);
        else if (is(t, Tag::key_count)) ok = read_as(t, m.key_count);
        else if (is(t, Tag::token_info)) {
            auto ti = decode_text_fields<TokenInfo>(t.value, kTokenInfoFields);
            if (!ti.ok()) return why = ti.status().message, false;
            m.tokens.push_back(std::move(ti).value());
        } else if (is(t, Tag::key_use)) {
            KeyUse u;
            bool fields_ok = true;
            Status inner = walk(t.value, [&](const Tlv& f, std::string& inner_why) {
                if (is(f, Tag::name)) u.name = read_string(f);
                else if (is(f, Tag::signatures)) fields_ok = fields_ok && read_as(f, u.signatures);
                else if (is(f, Tag::failed)) fields_ok = fields_ok && read_as(f, u.failed);
                if (!fields_ok) inner_why = "key use field of the wrong size";
                return fields_ok;
            });
            if (!inner.ok()) return why = inner.message, false;
            if (u.name.empty()) return why = "key use without a name", false;
            m.key_use.push_back(std::move(u));
        }
        if (!ok) why = "status field of the wrong size";
        return ok;
    });
    if (!s.ok()) return s;
    return m;
}

Result<ListKeysResponse> decode_list_keys_response(std::span<const uint8_t> body) {
    ListKeysResponse m;
    Status s = walk(body, [&](const Tlv& t, std::string& why) {
        if (is(t, Tag::key)) {
            auto k = decode_key_info(t.value);
            if (!k.ok()) return why = k.status().message, false;
            m.keys.push_back(std::move(k).value());
        } else if (is(t, Tag::name)) {
            m.next.assign(reinterpret_cast<const char*>(t.value.data()), t.value.size());
        }
        return true;
    });
    if (!s.ok()) return s;
    return m;
}

Result<KeyInfo> decode_key_response(std::span<const uint8_t> body) {
    std::optional<KeyInfo> key;
    Status s = walk(body, [&](const Tlv& t, std::string& why) {
        if (is(t, Tag::key)) {
            auto k = decode_key_info(t.value);
            if (!k.ok()) return why = k.status().message, false;
            key = std::move(k).value();
        }
        return true;
    });
    if (!s.ok()) return s;
    if (!key) return malformed("no key in the answer");
    return std::move(*key);
}

Result<SignResponse> decode_sign_response(std::span<const uint8_t> body) {
    SignResponse m;
    Status s = walk(body, [&](const Tlv& t, std::string&) {
        if (is(t, Tag::signature)) m.signature = read_bytes(t);
        return true;
    });
    if (!s.ok()) return s;
    if (m.signature.empty()) return malformed("no signature in the answer");
    return m;
}

std::string decode_error_message(std::span<const uint8_t> body) {
    std::string msg;
    walk(body, [&](const Tlv& t, std::string&) {
        if (is(t, Tag::message)) msg = read_string(t);
        return true;
    });
    return msg;
}

}  // namespace keyward::ipc
