// libFuzzer target: the wire codec. Every input gives a result or a clean error; whatever
// decodes re-encodes, and the re-encoded body decodes to the same message.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ipc/codec.hpp"

using namespace keyward;

namespace {

template <typename Decode>
void decode_all(std::span<const uint8_t> body, Decode decode) {
    auto r = decode(body);
    (void)r.ok();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::span<const uint8_t> input(data, size);
    // Frames, one after another, as the agent's read loop takes them.
    size_t off = 0;
    while (off < input.size()) {
        auto parsed = ipc::parse_frame(input.subspan(off));
        if (parsed.state != ipc::ParseState::complete) break;
        if (parsed.consumed == 0 || parsed.consumed > input.size() - off) __builtin_trap();
        off += parsed.consumed;
    }
    // Every body decoder on the raw bytes.
    decode_all(input, ipc::decode_hello_request);
    decode_all(input, ipc::decode_key_name_request);
    decode_all(input, ipc::decode_generate_key_request);
    decode_all(input, ipc::decode_import_key_request);
    decode_all(input, ipc::decode_renew_request);
    decode_all(input, ipc::decode_revoke_request);
    decode_all(input, ipc::decode_hello_response);
    decode_all(input, ipc::decode_status_response);
    decode_all(input, ipc::decode_list_keys_response);
    decode_all(input, ipc::decode_key_response);
    decode_all(input, ipc::decode_sign_response);
    decode_all(input, ipc::decode_document_response);
    (void)ipc::decode_error_message(input);
    auto sign = ipc::decode_sign_request(input);
    if (sign.ok()) {
        std::vector<uint8_t> out;
        if (ipc::encode_request(out, 7, sign.value())) {
            auto again = ipc::parse_frame(out);
            if (again.state != ipc::ParseState::complete) __builtin_trap();
            auto back = ipc::decode_sign_request(again.frame.body);
            if (!back.ok() || !(back.value() == sign.value())) __builtin_trap();
        }
    }
    return 0;
}
