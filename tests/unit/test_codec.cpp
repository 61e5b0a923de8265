// The wire codec: test vectors of docs/protocol.md, round trips, and hostile input.
#include <catch2/catch.hpp>

#include <random>

#include "hex.hpp"
#include "ipc/codec.hpp"

using namespace keyward;
using namespace keyward::ipc;

namespace {

FrameView parse_one(const std::vector<uint8_t>& bytes) {
    auto r = parse_frame(bytes);
    REQUIRE(r.state == ParseState::complete);
    REQUIRE(r.consumed == bytes.size());
    return r.frame;
}

}  // namespace

TEST_CASE("test vector: HELLO request", "[codec][vector]") {
    std::vector<uint8_t> out;
    REQUIRE(encode_request(out, 0, HelloRequest{1, "t"}));
    CHECK(out == from_hex("00000012 01 01 0000 00000000  0002 0001 01  0003 0001 74"));
    auto f = parse_one(out);
    auto m = decode_hello_request(f.body);
    REQUIRE(m.ok());
    CHECK(m->version == 1);
    CHECK(m->client == "t");
}

TEST_CASE("test vector: SIGN request", "[codec][vector]") {
    SignRequest req{"k", Scheme::ecdsa_secp256r1_sha256, std::vector<uint8_t>(32, 0xaa)};
    std::vector<uint8_t> out;
    REQUIRE(encode_request(out, 7, req));
    std::string digest;
    for (int i = 0; i < 32; ++i) digest += "aa";
    CHECK(out == from_hex("00000037 01 05 0000 00000007  0003 0001 6b  0006 0002 0403  0007 0020 " + digest));
    auto f = parse_one(out);
    CHECK(f.header.request_id == 7);
    CHECK(f.header.op == 5);
    auto back = decode_sign_request(f.body);
    REQUIRE(back.ok());
    CHECK(back.value() == req);
}

TEST_CASE("test vector: error answer", "[codec][vector]") {
    std::vector<uint8_t> out;
    REQUIRE(encode_error(out, 7, static_cast<uint8_t>(Op::sign), {ErrorCode::no_such_key, "no such key: k"}));
    CHECK(out == from_hex("0000001a 01 85 0004 00000007  0001 000e 6e6f2073756368206b65793a206b"));
    auto f = parse_one(out);
    CHECK(f.header.is_response());
    CHECK(f.header.base_op() == 5);
    CHECK(f.header.status == 4);
    CHECK(decode_error_message(f.body) == "no such key: k");
}

TEST_CASE("test vectors: text-only messages keep their field order, and an empty token stays off the wire",
          "[codec][vector]") {
    std::vector<uint8_t> out;
    REQUIRE(encode_request(out, 1, GenerateKeyRequest{"k", "ec-p256", ""}));
    CHECK(out == from_hex("00000018 01 06 0000 00000001  0003 0001 6b  0004 0007 65632d70323536"));
    out.clear();
    REQUIRE(encode_request(out, 1, GenerateKeyRequest{"k", "ec-p256", "t"}));
    CHECK(out == from_hex("0000001d 01 06 0000 00000001  0003 0001 6b  0004 0007 65632d70323536  0005 0001 74"));
    out.clear();
    REQUIRE(encode_request(out, 2, Op::get_identity, KeyNameRequest{"w"}));
    CHECK(out == from_hex("0000000d 01 0a 0000 00000002  0003 0001 77"));
    out.clear();
    StatusResponse st{"s", 1, 2, 3, {{"n", "k", "p", "d"}}};
    REQUIRE(encode_response(out, 3, st));
    CHECK(out == from_hex("00000045 01 82 0000 00000003  0003 0001 73  0013 0008 0000000000000001"
                          "  0014 0008 0000000000000002  0017 0004 00000003"
                          "  000f 0014 0003 0001 6e 0011 0001 6b 0010 0001 70 0012 0001 64"));
    out.clear();
    KeyInfo key{"k", "t", 1, "", {}, {}, {{"a", "b"}}};
    REQUIRE(encode_response(out, 4, Op::get_key, key));
    CHECK(out == from_hex("00000034 01 84 0000 00000004  000b 0028  0003 0001 6b  0004 0001 74  000a 0004 00000001"
                          "  0005 0000  0009 0000  000c 000a 000d 0001 61 000e 0001 62"));
}

TEST_CASE("required fields: a message without them is refused by name", "[codec][hostile]") {
    CHECK(decode_key_name_request({}).status().message == "malformed message: no key name");
    CHECK(decode_generate_key_request(from_hex("0004 0001 78")).status().message == "malformed message: no key name");
    CHECK(decode_generate_key_request(from_hex("0003 0001 6b")).status().message == "malformed message: no key type");
    // An attribute without a name, nested in a key (each level of nesting prefixes the message).
    auto key = from_hex("000b 000d 0003 0001 6b 000c 0004 000e 0000");
    CHECK_THAT(decode_key_response(key).status().message, Catch::Matchers::EndsWith("attribute without a name"));
    // The last of a repeated field wins; unknown tags are skipped.
    auto twice = decode_generate_key_request(from_hex("0003 0001 61  0003 0001 62  7777 0000  0004 0001 78"));
    REQUIRE(twice.ok());
    CHECK(twice->name == "b");
    CHECK(twice->token.empty());
}

TEST_CASE("round trip of every message", "[codec]") {
    KeyInfo key{"web",
                "ec-p256",
                256,
                "hsm",
                {0x30, 0x59, 0x01},
                {Scheme::ecdsa_secp256r1_sha256},
                {{"CKA_SENSITIVE", "true"}, {"CKA_EXTRACTABLE", "false"}}};
    std::vector<uint8_t> out;

    SECTION("status") {
        StatusResponse m{
            "keywardd 1", 12, 345, 2, {{"hsm", "pkcs11", "present", "SoftHSM"}}, {{"web", 40, 2}, {"db", 7, 0}}};
        REQUIRE(encode_response(out, 3, m));
        auto back = decode_status_response(parse_one(out).body);
        REQUIRE(back.ok());
        CHECK(back.value() == m);
    }
    SECTION("list keys") {
        ListKeysResponse m{{key, key}};
        m.keys[1].name = "other";
        REQUIRE(encode_response(out, 3, m));
        auto back = decode_list_keys_response(parse_one(out).body);
        REQUIRE(back.ok());
        CHECK(back.value() == m);
    }
    SECTION("get key") {
        key.certificates = {{0x30, 0x82, 0x01}, {0x30, 0x03, 0x02, 0x01, 0x00}};  // leaf, then chain, in order
        REQUIRE(encode_response(out, 9, Op::get_key, key));
        auto f = parse_one(out);
        CHECK(f.header.op == (static_cast<uint8_t>(Op::get_key) | kResponseBit));
        auto back = decode_key_response(f.body);
        REQUIRE(back.ok());
        CHECK(back.value() == key);
    }
    SECTION("hello answer") {
        HelloResponse m{1, "keywardd", kMaxFrameSize, 128, 1000};
        REQUIRE(encode_response(out, 0, m));
        auto back = decode_hello_response(parse_one(out).body);
        REQUIRE(back.ok());
        CHECK(back.value() == m);
    }
    SECTION("generate and key-name requests") {
        GenerateKeyRequest g{"n", "rsa-2048", "tpm"};
        REQUIRE(encode_request(out, 1, g));
        auto back = decode_generate_key_request(parse_one(out).body);
        REQUIRE(back.ok());
        CHECK(back.value() == g);
        out.clear();
        REQUIRE(encode_request(out, 2, Op::delete_key, KeyNameRequest{"n"}));
        auto name = decode_key_name_request(parse_one(out).body);
        REQUIRE(name.ok());
        CHECK(name->name == "n");
    }
    SECTION("import request") {
        ImportKeyRequest m{"tpmkey", "tpm", {0x2d, 0x2d, 0x2d}};
        REQUIRE(encode_request(out, 5, m));
        auto back = decode_import_key_request(parse_one(out).body);
        REQUIRE(back.ok());
        CHECK(back.value() == m);
        CHECK_FALSE(decode_import_key_request({}).ok());
    }
    SECTION("sign answer") {
        SignResponse m{{1, 2, 3}};
        REQUIRE(encode_response(out, 4, m));
        auto back = decode_sign_response(parse_one(out).body);
        REQUIRE(back.ok());
        CHECK(back.value() == m);
    }
}

TEST_CASE("frames arrive in pieces and back to back", "[codec]") {
    std::vector<uint8_t> stream;
    REQUIRE(encode_request(stream, 1, Op::status));
    REQUIRE(encode_request(stream, 2, Op::list_keys));
    // Every strict prefix of the first frame is incomplete, never invalid.
    size_t first = parse_frame(stream).consumed;
    for (size_t n = 0; n < first; ++n)
        CHECK(parse_frame(std::span<const uint8_t>(stream.data(), n)).state == ParseState::incomplete);
    auto a = parse_frame(stream);
    auto b = parse_frame(std::span<const uint8_t>(stream).subspan(a.consumed));
    REQUIRE(b.state == ParseState::complete);
    CHECK(a.frame.header.request_id == 1);
    CHECK(b.frame.header.request_id == 2);
}

TEST_CASE("an oversized or undersized length is refused from the prefix alone", "[codec][hostile]") {
    auto big = from_hex("00010001");  // 65537 > kMaxFrameSize, nothing else sent
    auto r = parse_frame(big);
    CHECK(r.state == ParseState::invalid);
    CHECK(r.error.code == ErrorCode::bad_request);
    CHECK(parse_frame(from_hex("ffffffff")).state == ParseState::invalid);
    CHECK(parse_frame(from_hex("00000007 01010000000000")).state == ParseState::invalid);
    CHECK(parse_frame(from_hex("00010000")).state == ParseState::incomplete);  // exactly the maximum is fine
}

TEST_CASE("truncated and malformed bodies give clean errors", "[codec][hostile]") {
    SignRequest req{"k", Scheme::rsa_pss_rsae_sha256, std::vector<uint8_t>(32, 1)};
    std::vector<uint8_t> out;
    REQUIRE(encode_request(out, 1, req));
    auto body = parse_one(out).body;
    for (size_t n = 0; n < body.size(); ++n) {
        auto r = decode_sign_request(body.first(n));
        CHECK_FALSE(r.ok());
        CHECK(r.status().code == ErrorCode::bad_request);
    }
    // A scheme of the wrong width.
    auto bad = from_hex("0003 0001 6b  0006 0003 040300  0007 0001 aa");
    CHECK_FALSE(decode_sign_request(bad).ok());
    // Unknown tags are skipped, for forward compatibility.
    auto extra = from_hex("0003 0001 6b  7777 0002 beef  0006 0002 0403  0007 0001 aa");
    CHECK(decode_sign_request(extra).ok());
    // A nested key with a truncated attribute.
    auto key = from_hex("000b 000a 0003 0001 6b 000c 0003 0000");
    CHECK_FALSE(decode_key_response(key).ok());
}

TEST_CASE("REVOKE round trip; truncated, oversized and garbage bodies are refused", "[codec][hostile]") {
    RevokeRequest req{"web", "keyCompromise", kRevokeRetire};
    std::vector<uint8_t> out;
    REQUIRE(encode_request(out, 7, req));
    auto frame = parse_one(out);
    CHECK(frame.header.op == static_cast<uint8_t>(Op::revoke));
    CHECK(op_from_byte(14) == Op::revoke);
    CHECK(op_from_byte(13) == Op::doctor);
    CHECK_FALSE(op_from_byte(15).has_value());
    CHECK(op_name(Op::revoke) == "revoke");
    auto back = decode_revoke_request(frame.body);
    REQUIRE(back.ok());
    CHECK(back.value() == req);
    // Without a reason: unspecified, left to the agent.
    std::vector<uint8_t> bare;
    REQUIRE(encode_request(bare, 8, RevokeRequest{"web", "", 0}));
    auto plain = decode_revoke_request(parse_one(bare).body);
    REQUIRE(plain.ok());
    CHECK(plain->reason.empty());
    // Truncated bodies: a clean error or (cut between whole elements) a shorter request,
    // never a request naming no identity.
    for (size_t n = 0; n < frame.body.size(); ++n) {
        auto r = decode_revoke_request(frame.body.first(n));
        if (r.ok()) CHECK_FALSE(r->name.empty());
        else CHECK(r.status().code == ErrorCode::bad_request);
    }
    CHECK_FALSE(decode_revoke_request(from_hex("0003 0003 776562  001b 0002 0101")).ok());  // flags of two bytes
    CHECK_FALSE(decode_revoke_request(from_hex("001d 0003 6b6579")).ok());                  // no identity
    CHECK_FALSE(decode_revoke_request(from_hex("0003 00ff 77")).ok());                      // length past the end
    RevokeRequest huge{std::string(70000, 'w'), "keyCompromise", 0};
    std::vector<uint8_t> none;
    CHECK_FALSE(encode_request(none, 9, huge));
    CHECK(none.empty());
}

TEST_CASE("random garbage never crashes the decoders", "[codec][hostile]") {
    std::mt19937 rng(42);
    for (int i = 0; i < 20000; ++i) {
        std::vector<uint8_t> junk(rng() % 200);
        for (auto& b : junk) b = static_cast<uint8_t>(rng());
        auto r = parse_frame(junk);
        std::span<const uint8_t> body = r.state == ParseState::complete ? r.frame.body : std::span<const uint8_t>(junk);
        (void)decode_hello_request(body);
        (void)decode_sign_request(body);
        (void)decode_generate_key_request(body);
        (void)decode_status_response(body);
        (void)decode_list_keys_response(body);
        (void)decode_key_response(body);
        (void)decode_key_name_request(body);
        (void)decode_import_key_request(body);
        (void)decode_renew_request(body);
        (void)decode_revoke_request(body);
        (void)decode_hello_response(body);
        (void)decode_sign_response(body);
        (void)decode_document_response(body);
        (void)decode_error_message(body);
    }
    SUCCEED("20000 random inputs decoded without a crash (run under ASan for the real check)");
}

TEST_CASE("a message that does not fit a frame is refused and leaves nothing behind", "[codec]") {
    std::vector<uint8_t> out{9, 9};
    SignRequest huge{"k", Scheme::ecdsa_secp256r1_sha256, std::vector<uint8_t>(70000, 1)};
    CHECK_FALSE(encode_request(out, 1, huge));
    CHECK(out == std::vector<uint8_t>{9, 9});
    ListKeysResponse many;
    for (int i = 0; i < 200; ++i)
        many.keys.push_back({"key" + std::to_string(i), "rsa-4096", 4096, "t", std::vector<uint8_t>(550, 7), {}, {}});
    CHECK_FALSE(encode_response(out, 1, many));
    CHECK(out.size() == 2);
}

TEST_CASE("scheme table", "[protocol]") {
    for (const auto& s : all_schemes()) {
        CHECK(scheme_by_name(s.name) == &s);
        CHECK(scheme_info(s.scheme) == &s);
    }
    CHECK(scheme_by_name("rsa_raw") == nullptr);
    CHECK(scheme_from_u16(0x0000) == nullptr);
    CHECK(static_cast<uint16_t>(Scheme::rsa_pss_rsae_sha256) == 0x0804);
}

TEST_CASE("LIST_KEYS pages: the answer names its last key when more follow", "[codec]") {
    ipc::ListKeysResponse page;
    page.keys.push_back({"a", "ec-p256", 256, "t", {1, 2}, {Scheme::ecdsa_secp256r1_sha256}, {}});
    page.next = "a";
    std::vector<uint8_t> out;
    REQUIRE(ipc::encode_response(out, 9, page));
    auto parsed = ipc::parse_frame(out);
    REQUIRE(parsed.state == ipc::ParseState::complete);
    auto back = ipc::decode_list_keys_response(parsed.frame.body);
    REQUIRE(back.ok());
    CHECK(back.value() == page);
    page.next.clear();  // the last page says nothing more
    out.clear();
    REQUIRE(ipc::encode_response(out, 9, page));
    parsed = ipc::parse_frame(out);
    CHECK(ipc::decode_list_keys_response(parsed.frame.body).value().next.empty());
}
