#include "tpm/key_file.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <optional>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <tss2/tss2_mu.h>

namespace keyward::tpm {
namespace {

constexpr char kPemName[] = "TSS2 PRIVATE KEY";
// DER contents of OID 2.23.133.10.1.3 (loadable key) and 2.23.133.10.1.4 (importable key).
constexpr std::array<uint8_t, 6> kLoadableKeyOid = {0x67, 0x81, 0x05, 0x0A, 0x01, 0x03};
constexpr std::array<uint8_t, 6> kImportableKeyOid = {0x67, 0x81, 0x05, 0x0A, 0x01, 0x04};

enum : uint8_t {
    kTagBoolean = 0x01,
    kTagInteger = 0x02,
    kTagOctetString = 0x04,
    kTagOid = 0x06,
    kTagSequence = 0x30,
    kTagContext0 = 0xA0,
    kTagContext1 = 0xA1,
    kTagContext2 = 0xA2,
};

// A forward-only DER reader over one buffer: every read is bounds-checked.
class DerReader {
public:
    explicit DerReader(std::span<const uint8_t> in) : in_(in) {}
    bool empty() const noexcept { return pos_ >= in_.size(); }
    std::optional<uint8_t> peek_tag() const noexcept {
        if (empty()) return std::nullopt;
        return in_[pos_];
    }
    // Reads one TLV with the given tag and returns its contents.
    std::optional<std::span<const uint8_t>> read(uint8_t tag) {
        if (pos_ + 2 > in_.size() || in_[pos_] != tag) return std::nullopt;
        size_t p = pos_ + 1;
        size_t len = in_[p++];
        if (len & 0x80) {
            const size_t n = len & 0x7F;
            if (n == 0 || n > 3 || p + n > in_.size()) return std::nullopt;
            len = 0;
            for (size_t i = 0; i < n; ++i) len = (len << 8) | in_[p++];
        }
        if (len > in_.size() - p) return std::nullopt;
        pos_ = p + len;
        return in_.subspan(p, len);
    }

private:
    std::span<const uint8_t> in_;
    size_t pos_ = 0;
};

void put_tlv(std::vector<uint8_t>& out, uint8_t tag, std::span<const uint8_t> value) {
    out.push_back(tag);
    const size_t n = value.size();
    if (n < 0x80) {
        out.push_back(static_cast<uint8_t>(n));
    } else if (n <= 0xFF) {
        out.push_back(0x81);
        out.push_back(static_cast<uint8_t>(n));
    } else {
        out.push_back(n <= 0xFFFF ? 0x82 : 0x83);
        if (n > 0xFFFF) out.push_back(static_cast<uint8_t>(n >> 16));
        out.push_back(static_cast<uint8_t>(n >> 8));
        out.push_back(static_cast<uint8_t>(n));
    }
    out.insert(out.end(), value.begin(), value.end());
}

std::vector<uint8_t> integer_contents(uint32_t v) {
    std::vector<uint8_t> bytes = {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
                                  static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
    while (bytes.size() > 1 && bytes[0] == 0 && !(bytes[1] & 0x80)) bytes.erase(bytes.begin());
    if (bytes[0] & 0x80) bytes.insert(bytes.begin(), 0);
    return bytes;
}

Status bad(const std::string& why) { return Status{ErrorCode::invalid_argument, "not a usable TSS2 PRIVATE KEY: " + why}; }

// PEM in, DER out; bytes that are no PEM are taken as DER.
std::vector<uint8_t> der_of(std::span<const uint8_t> bytes) {
    static constexpr std::string_view kBegin = "-----BEGIN ";
    const bool looks_pem = std::search(bytes.begin(), bytes.end(), kBegin.begin(), kBegin.end()) != bytes.end();
    if (!looks_pem) return {bytes.begin(), bytes.end()};
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())),
                                                  BIO_free);
    if (!bio) return {};
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    std::vector<uint8_t> der;
    // Skip other blocks (a file may carry a certificate too).
    while (PEM_read_bio(bio.get(), &name, &header, &data, &len) == 1) {
        const bool ours = std::strcmp(name, kPemName) == 0;
        if (ours) der.assign(data, data + len);
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_clear_free(data, static_cast<size_t>(len));
        if (ours) break;
    }
    return der;
}

}  // namespace

Result<KeyFile> parse_key_file(std::span<const uint8_t> bytes) {
    const std::vector<uint8_t> der = der_of(bytes);
    if (der.empty()) return bad("no \"" + std::string(kPemName) + "\" PEM block or DER structure found");
    DerReader outer(der);
    auto seq = outer.read(kTagSequence);
    if (!seq || !outer.empty()) return bad("not one DER SEQUENCE");
    DerReader r(*seq);
    auto oid = r.read(kTagOid);
    if (!oid) return bad("missing type OID");
    if (std::equal(oid->begin(), oid->end(), kImportableKeyOid.begin(), kImportableKeyOid.end()))
        return bad("an importable (duplicated) key; load it with tpm2_import first");
    if (!std::equal(oid->begin(), oid->end(), kLoadableKeyOid.begin(), kLoadableKeyOid.end()))
        return bad("type is not 2.23.133.10.1.3 (loadable key)");
    KeyFile key;
    key.empty_auth = false;  // absent means the key has an auth value
    if (r.peek_tag() == kTagContext0) {
        auto wrapped = r.read(kTagContext0);
        if (!wrapped) return bad("emptyAuth is malformed");
        DerReader inner(*wrapped);
        auto b = inner.read(kTagBoolean);
        if (!b || b->size() != 1) return bad("emptyAuth is not a BOOLEAN");
        key.empty_auth = (*b)[0] != 0;
    }
    if (r.peek_tag() == kTagContext1) return bad("it needs a policy session, which keyward does not support");
    if (r.peek_tag() == kTagContext2) return bad("it carries an import secret (not a loadable key)");
    auto parent = r.read(kTagInteger);
    if (!parent || parent->empty() || parent->size() > 5 || ((*parent)[0] & 0x80)) return bad("bad parent handle");
    uint64_t handle = 0;
    for (uint8_t b : *parent) handle = (handle << 8) | b;
    if (handle > 0xFFFFFFFFu) return bad("bad parent handle");
    key.parent = static_cast<TPM2_HANDLE>(handle);
    auto pub = r.read(kTagOctetString);
    auto priv = r.read(kTagOctetString);
    if (!pub || !priv) return bad("missing public or private part");
    size_t offset = 0;
    if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(pub->data(), pub->size(), &offset, &key.pub) != TSS2_RC_SUCCESS ||
        offset != pub->size())
        return bad("the public part is not a TPM2B_PUBLIC");
    offset = 0;
    if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(priv->data(), priv->size(), &offset, &key.priv) != TSS2_RC_SUCCESS ||
        offset != priv->size())
        return bad("the private part is not a TPM2B_PRIVATE");
    return key;
}

std::vector<uint8_t> encode_key_file_der(const KeyFile& key) {
    std::vector<uint8_t> pub(sizeof(TPM2B_PUBLIC)), priv(sizeof(TPM2B_PRIVATE));
    size_t pub_len = 0, priv_len = 0;
    if (Tss2_MU_TPM2B_PUBLIC_Marshal(&key.pub, pub.data(), pub.size(), &pub_len) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_PRIVATE_Marshal(&key.priv, priv.data(), priv.size(), &priv_len) != TSS2_RC_SUCCESS)
        return {};
    pub.resize(pub_len);
    priv.resize(priv_len);

    std::vector<uint8_t> body;
    put_tlv(body, kTagOid, kLoadableKeyOid);
    if (key.empty_auth) {
        std::vector<uint8_t> boolean;
        put_tlv(boolean, kTagBoolean, std::array<uint8_t, 1>{0xFF});
        put_tlv(body, kTagContext0, boolean);
    }
    put_tlv(body, kTagInteger, integer_contents(key.parent));
    put_tlv(body, kTagOctetString, pub);
    put_tlv(body, kTagOctetString, priv);
    std::vector<uint8_t> out;
    put_tlv(out, kTagSequence, body);
    return out;
}

std::string encode_key_file_pem(const KeyFile& key) {
    const std::vector<uint8_t> der = encode_key_file_der(key);
    if (der.empty()) return {};
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    if (!bio || PEM_write_bio(bio.get(), kPemName, "", der.data(), static_cast<long>(der.size())) <= 0) return {};
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(len));
}

}  // namespace keyward::tpm
