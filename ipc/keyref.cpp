// Key-reference encoding:
//   KeywardKeyReference ::= SEQUENCE {
//       version  INTEGER (1),
//       name     UTF8String,
//       spki     SubjectPublicKeyInfo }
// wrapped in a PEM block labelled "KEYWARD KEY". Decoding is strict DER: the input is
// parsed field by field, the public key is checked with OpenSSL, and the result must
// re-encode to exactly the bytes we were given (this rejects BER forms, non-minimal
// lengths and trailing bytes in one place).
#include "ipc/keyref.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/ossl.hpp"

namespace keyward {

namespace {

constexpr long kVersion = 1;
// An RSA-4096 SPKI is about 550 bytes; names are short. Anything this large is not ours.
constexpr size_t kMaxDerSize = 16 * 1024;
constexpr size_t kMaxNameSize = 255;
// DER identifier octets (universal class; SEQUENCE is constructed).
constexpr uint8_t kTagInteger = 0x02;
constexpr uint8_t kTagUtf8String = 0x0c;
constexpr uint8_t kTagSequence = 0x30;

Status invalid(std::string why) {
    return {ErrorCode::invalid_argument, "invalid keyward key reference: " + std::move(why)};
}

// DER tag + definite length, shortest form (X.690 §10.1).
void put_header(std::vector<uint8_t>& out, uint8_t tag, size_t len) {
    out.push_back(tag);
    if (len < 0x80) {
        out.push_back(static_cast<uint8_t>(len));
        return;
    }
    uint8_t bytes[sizeof(size_t)];
    int n = 0;
    for (size_t v = len; v != 0; v >>= 8) bytes[n++] = static_cast<uint8_t>(v & 0xff);
    out.push_back(static_cast<uint8_t>(0x80 | n));
    while (n > 0) out.push_back(bytes[--n]);
}

// Reads one TLV header with OpenSSL's parser and checks the tag; on success `p` points
// at the contents and `len` is their length, which is known to fit in what is left.
bool read_header(const unsigned char*& p, long& left, int want_tag, bool want_constructed, long& len) {
    if (left <= 0) return false;
    const unsigned char* q = p;
    int tag = 0;
    int cls = 0;
    int ret = ASN1_get_object(&q, &len, &tag, &cls, left);
    if (ret & 0x80) return false;  // error, or length runs past the input
    if (ret & 0x01) return false;  // indefinite length: BER, not DER
    if (cls != V_ASN1_UNIVERSAL || tag != want_tag) return false;
    if (((ret & V_ASN1_CONSTRUCTED) != 0) != want_constructed) return false;
    left -= static_cast<long>(q - p);
    if (len > left) return false;
    p = q;
    return true;
}

bool valid_utf8_name(std::string_view s) {
    // Key names are printable text; control characters would let a crafted file forge
    // log lines or error messages.
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7f) return false;
        size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        for (size_t k = 1; k < n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
        i += n;
    }
    return true;
}

// OpenSSL's parsers leave errors on the thread's queue; a failed decode reports through
// its Status instead, so nothing of ours is left behind for the caller to trip over.
struct ErrorQueueScope {
    ErrorQueueScope() { ERR_set_mark(); }
    ~ErrorQueueScope() { ERR_pop_to_mark(); }
    ErrorQueueScope(const ErrorQueueScope&) = delete;
    ErrorQueueScope& operator=(const ErrorQueueScope&) = delete;
};

}  // namespace

std::vector<uint8_t> encode_key_reference_der(const KeyReference& ref) {
    std::vector<uint8_t> body;
    put_header(body, kTagInteger, 1);
    body.push_back(static_cast<uint8_t>(kVersion));
    put_header(body, kTagUtf8String, ref.name.size());
    body.insert(body.end(), ref.name.begin(), ref.name.end());
    body.insert(body.end(), ref.spki.begin(), ref.spki.end());

    std::vector<uint8_t> out;
    out.reserve(body.size() + 8);
    put_header(out, kTagSequence, body.size());
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

Result<KeyReference> decode_key_reference_der(std::span<const uint8_t> der) {
    ErrorQueueScope errors;
    if (der.empty()) return invalid("empty input");
    if (der.size() > kMaxDerSize)
        return invalid("too large (" + std::to_string(der.size()) + " bytes, at most " + std::to_string(kMaxDerSize) +
                       ")");

    const unsigned char* p = der.data();
    long left = static_cast<long>(der.size());
    long len = 0;
    if (!read_header(p, left, V_ASN1_SEQUENCE, true, len)) return invalid("not a DER SEQUENCE (truncated or garbage)");
    if (len != left) return invalid("trailing bytes after the SEQUENCE");

    long inner = len;
    if (!read_header(p, inner, V_ASN1_INTEGER, false, len) || len != 1 || p[0] != kVersion)
        return invalid("missing or unsupported version (expected INTEGER 1)");
    p += len;
    inner -= len;

    if (!read_header(p, inner, V_ASN1_UTF8STRING, false, len)) return invalid("missing key name (UTF8String)");
    if (len == 0) return invalid("empty key name");
    if (static_cast<size_t>(len) > kMaxNameSize) return invalid("key name longer than 255 bytes");
    KeyReference ref;
    ref.name.assign(reinterpret_cast<const char*>(p), static_cast<size_t>(len));
    if (!valid_utf8_name(ref.name)) return invalid("key name is not printable UTF-8");
    p += len;
    inner -= len;

    if (inner <= 0) return invalid("missing public key");
    const unsigned char* spki_start = p;
    const unsigned char* q = p;
    ossl::PKey pub(d2i_PUBKEY(nullptr, &q, inner));
    if (!pub) {
        return invalid("the public key is not a valid SubjectPublicKeyInfo");
    }
    if (q - spki_start != inner) return invalid("trailing bytes after the public key");
    ref.spki.assign(spki_start, spki_start + inner);

    // Anything that parsed but is not in canonical DER (long-form small lengths, a
    // version written as 0x0001, ...) fails here.
    if (encode_key_reference_der(ref) != std::vector<uint8_t>(der.begin(), der.end()))
        return invalid("not in canonical DER form");
    return ref;
}

std::string encode_key_reference_pem(const KeyReference& ref) {
    std::vector<uint8_t> der = encode_key_reference_der(ref);
    ossl::Bio bio(BIO_new(BIO_s_mem()));
    std::string label(kKeyReferencePemLabel);
    if (!bio || PEM_write_bio(bio.get(), label.c_str(), "", der.data(), static_cast<long>(der.size())) <= 0) {
        ERR_clear_error();
        return {};
    }
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

Result<KeyReference> decode_key_reference_pem(std::string_view pem) {
    ErrorQueueScope errors;
    // The whole file is bounded too: base64 is 4/3 of the DER plus headers and other
    // blocks (a certificate may share the file).
    if (pem.size() > 16 * kMaxDerSize) return invalid("file too large");
    ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) return Status{ErrorCode::internal, "out of memory"};
    unsigned char* raw = nullptr;
    long raw_len = 0;
    std::string label(kKeyReferencePemLabel);
    // Skips blocks with other labels, so a reference may sit next to a certificate.
    if (PEM_bytes_read_bio(&raw, &raw_len, nullptr, label.c_str(), bio.get(), nullptr, nullptr) <= 0) {
        return invalid("no valid \"-----BEGIN " + label + "-----\" block found");
    }
    ossl::Bytes owned(raw);
    return decode_key_reference_der({raw, static_cast<size_t>(raw_len)});
}

}  // namespace keyward
