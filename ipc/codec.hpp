// Pure codec for keyward frames: bytes in, structs out. No I/O, no exceptions, and every
// input gives either a value or a clean error, so it can be fuzzed.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/protocol.hpp"
#include "core/result.hpp"

namespace keyward::ipc {

struct FrameHeader {
    uint8_t version = kProtocolVersion;
    uint8_t op = 0;       // with kResponseBit set on answers
    uint16_t status = 0;  // ErrorCode on answers, 0 on requests
    uint32_t request_id = 0;

    bool is_response() const noexcept { return (op & kResponseBit) != 0; }
    uint8_t base_op() const noexcept { return static_cast<uint8_t>(op & ~kResponseBit); }
};

// A frame as it sits in a receive buffer; body points into that buffer.
struct FrameView {
    FrameHeader header;
    std::span<const uint8_t> body;
};

enum class ParseState { complete, incomplete, invalid };

struct ParseOutcome {
    ParseState state = ParseState::incomplete;
    size_t consumed = 0;  // bytes of this frame (prefix included) when complete
    FrameView frame;
    Status error;  // when invalid: the connection cannot be resynchronised
};

// Looks at the front of `buffer`. An oversized or undersized length is reported as
// invalid from the 4-byte prefix alone, before the rest of the frame has arrived.
ParseOutcome parse_frame(std::span<const uint8_t> buffer) noexcept;

// ---- TLV reading ----------------------------------------------------------

struct Tlv {
    uint16_t tag;
    std::span<const uint8_t> value;
};

class TlvReader {
public:
    explicit TlvReader(std::span<const uint8_t> body) noexcept : rest_(body) {}
    // false at the end or on a truncated element (then error() is set).
    bool next(Tlv& out) noexcept;
    bool failed() const noexcept { return failed_; }

private:
    std::span<const uint8_t> rest_;
    bool failed_ = false;
};

// ---- frame writing --------------------------------------------------------

// Appends one frame to `out` (which may already hold other frames: responses are batched).
class FrameWriter {
public:
    FrameWriter(std::vector<uint8_t>& out, const FrameHeader& header);
    void put_bytes(Tag tag, std::span<const uint8_t> value);
    void put_string(Tag tag, std::string_view value);
    void put_u8(Tag tag, uint8_t v);
    void put_u16(Tag tag, uint16_t v);
    void put_u32(Tag tag, uint32_t v);
    void put_u64(Tag tag, uint64_t v);
    // Nested TLV: begin returns a mark to pass to end.
    size_t begin_nested(Tag tag);
    void end_nested(size_t mark);
    // Patches the length prefix. False when the frame outgrew kMaxFrameSize (or a
    // value its u16 length); the caller must then drop what was written.
    bool finish();
    size_t start() const noexcept { return start_; }

private:
    std::vector<uint8_t>& out_;
    size_t start_;
    bool overflow_ = false;
};

// ---- typed messages -------------------------------------------------------
// encode_* appends a complete frame; false means it would exceed kMaxFrameSize
// (nothing is left appended then). decode_* take the body of a frame.

bool encode_request(std::vector<uint8_t>& out, uint32_t id, Op op);  // empty-body requests
bool encode_request(std::vector<uint8_t>& out, uint32_t id, const HelloRequest& m);
bool encode_request(std::vector<uint8_t>& out, uint32_t id, Op op, const KeyNameRequest& m);
bool encode_request(std::vector<uint8_t>& out, uint32_t id, const SignRequest& m);
bool encode_request(std::vector<uint8_t>& out, uint32_t id, const GenerateKeyRequest& m);
bool encode_request(std::vector<uint8_t>& out, uint32_t id, const ImportKeyRequest& m);
bool encode_request(std::vector<uint8_t>& out, uint32_t id, const RenewRequest& m);
bool encode_request(std::vector<uint8_t>& out, uint32_t id, const RevokeRequest& m);

bool encode_error(std::vector<uint8_t>& out, uint32_t id, uint8_t op, const Status& status);
bool encode_empty_response(std::vector<uint8_t>& out, uint32_t id, Op op);
bool encode_response(std::vector<uint8_t>& out, uint32_t id, const HelloResponse& m);
bool encode_response(std::vector<uint8_t>& out, uint32_t id, const StatusResponse& m);
bool encode_response(std::vector<uint8_t>& out, uint32_t id, const ListKeysResponse& m);
bool encode_response(std::vector<uint8_t>& out, uint32_t id, Op op,
                     const KeyInfo& m);  // GET_KEY, GENERATE_KEY, IMPORT_KEY
bool encode_response(std::vector<uint8_t>& out, uint32_t id, const SignResponse& m);
bool encode_response(std::vector<uint8_t>& out, uint32_t id, Op op, const DocumentResponse& m);

Result<HelloRequest> decode_hello_request(std::span<const uint8_t> body);
Result<KeyNameRequest> decode_key_name_request(std::span<const uint8_t> body);
Result<SignRequest> decode_sign_request(std::span<const uint8_t> body);
Result<GenerateKeyRequest> decode_generate_key_request(std::span<const uint8_t> body);
Result<ImportKeyRequest> decode_import_key_request(std::span<const uint8_t> body);
Result<RenewRequest> decode_renew_request(std::span<const uint8_t> body);
Result<RevokeRequest> decode_revoke_request(std::span<const uint8_t> body);

Result<HelloResponse> decode_hello_response(std::span<const uint8_t> body);
Result<StatusResponse> decode_status_response(std::span<const uint8_t> body);
Result<ListKeysResponse> decode_list_keys_response(std::span<const uint8_t> body);
Result<KeyInfo> decode_key_response(std::span<const uint8_t> body);
Result<SignResponse> decode_sign_response(std::span<const uint8_t> body);
Result<DocumentResponse> decode_document_response(std::span<const uint8_t> body);
// The message of a failed response (status != 0); empty when absent or malformed.
std::string decode_error_message(std::span<const uint8_t> body);

}  // namespace keyward::ipc
