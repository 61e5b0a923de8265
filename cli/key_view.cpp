#include "cli/key_view.hpp"

#include <cstdio>

#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "cli/exit_codes.hpp"
#include "core/hex.hpp"
#include "core/ossl.hpp"

namespace keyward::cli {

std::string scheme_display_name(Scheme scheme) {
    if (const auto* info = scheme_info(scheme)) return std::string(info->name);
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%04x", static_cast<unsigned>(scheme));
    return buf;
}

std::string spki_sha256(std::span<const uint8_t> spki) {
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(spki.data(), spki.size(), digest);
    return to_hex(digest);
}

Result<std::string> spki_pem(std::span<const uint8_t> spki) {
    const unsigned char* p = spki.data();
    ossl::PKey key(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())));
    if (!key || p != spki.data() + spki.size())
        return Status{ErrorCode::protocol_error,
                      "the agent sent a public key that is not a valid SubjectPublicKeyInfo"};
    // Print the agent's bytes as they are rather than OpenSSL's re-encoding of them.
    ossl::Bio bio(BIO_new(BIO_s_mem()));
    if (!bio || !PEM_write_bio(bio.get(), "PUBLIC KEY", "", spki.data(), static_cast<long>(spki.size())))
        return Status{ErrorCode::internal, "cannot PEM-encode the public key"};
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(len));
}

namespace {

// "subject (issuer ISSUER)" of a DER certificate, for `keys show`.
std::string certificate_line(const std::vector<uint8_t>& der) {
    const unsigned char* p = der.data();
    ossl::Cert cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
    if (!cert) return "(not a certificate the CLI can read, " + std::to_string(der.size()) + " bytes)";
    const auto name = [](const X509_NAME* n) {
        char buf[512];
        X509_NAME_oneline(n, buf, sizeof buf);
        return std::string(buf);
    };
    return name(X509_get_subject_name(cert.get())) + " (issuer " + name(X509_get_issuer_name(cert.get())) + ")";
}

}  // namespace

std::string printable(std::string_view text) {
    std::string out(text);
    for (auto& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    return out;
}

JsonDocument key_json(const ipc::KeyInfo& key) {
    JsonDocument schemes = JsonDocument::array();
    for (auto s : key.schemes) schemes.push_back(scheme_display_name(s));
    JsonDocument attributes = JsonDocument::array();
    for (const auto& a : key.attributes) attributes.push_back(JsonDocument{{"name", a.name}, {"value", a.value}});
    return {
        {"name", key.name},
        {"type", key.type},
        {"bits", key.bits},
        {"token", key.token},
        {"schemes", std::move(schemes)},
        {"spki_sha256", spki_sha256(key.spki)},
        {"attributes", std::move(attributes)},
    };
}

std::string key_text(const ipc::KeyInfo& key) {
    std::string out;
    const auto line = [&](std::string_view label, const std::string& value) {
        out += label;
        out.append(label.size() < 13 ? 13 - label.size() : 1, ' ');
        out += printable(value);
        out += '\n';
    };
    line("name:", key.name);
    line("type:", key.type);
    line("bits:", std::to_string(key.bits));
    line("token:", key.token);
    std::string schemes;
    for (auto s : key.schemes) schemes += (schemes.empty() ? "" : ", ") + scheme_display_name(s);
    line("schemes:", schemes.empty() ? "(none)" : schemes);
    line("spki sha256:", spki_sha256(key.spki));
    if (key.attributes.empty()) {
        line("attributes:", "(none reported)");
    } else {
        out += "attributes:\n";
        for (const auto& a : key.attributes) out += "  " + printable(a.name) + ": " + printable(a.value) + "\n";
    }
    // The certificate the device keeps with the key (a card's), then any chain behind it.
    for (size_t i = 0; i < key.certificates.size(); ++i)
        line(i == 0 ? "certificate:" : "chain:", certificate_line(key.certificates[i]));
    return out;
}

int print_key(const ipc::KeyInfo& key, bool json, std::string_view headline) {
    if (json) return print_json(key_json(key));
    if (!headline.empty()) std::printf("%.*s\n", static_cast<int>(headline.size()), headline.data());
    std::fputs(key_text(key).c_str(), stdout);
    return exit_ok;
}

}  // namespace keyward::cli
