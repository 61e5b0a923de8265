// keyward keys list | show | pubkey | create | delete | ref
#include <cstdio>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/io.hpp"
#include "cli/json_output.hpp"
#include "cli/key_view.hpp"
#include "core/key_types.hpp"
#include "ipc/keyref.hpp"
#include "pki/certificates.hpp"

namespace po = boost::program_options;

namespace keyward::cli {
namespace {

po::options_description out_option() {
    po::options_description options("Options");
    options.add_options()("out", po::value<std::string>()->value_name("FILE"), "write to FILE instead of stdout");
    return options;
}

// `keys pubkey` and `keys ref`: fetch key NAME, check its public key (a file others load
// must not carry one the agent got wrong), and write what `render` makes of it.
template <typename Render>
int write_key_file(Context& ctx, const CommandSyntax& syntax, mode_t mode, Render&& render) {
    const auto options = out_option();
    po::variables_map vm;
    if (auto done = parse_command(ctx, syntax, options, vm)) return *done;
    const std::string name = positional_arg(vm, 0);
    const std::string action = ctx.command() + " " + name;

    auto key = ctx.client().get_key(name);
    if (!key.ok()) return ctx.fail(key.status(), action);
    auto pem = spki_pem(key->spki);
    if (!pem.ok()) return ctx.fail(pem.status(), action);
    if (auto s = write_output(string_option(vm, "out"), render(key.value(), pem.value()), mode); !s.ok())
        return ctx.error(s.message);
    return exit_ok;
}

}  // namespace

int run_keys_list(Context& ctx) {
    static const CommandSyntax syntax{"keys list", "Lists the keys the agent holds that you may see.", {}};
    if (auto done = parse_command(ctx, syntax)) return *done;

    auto keys = ctx.client().list_keys();
    if (!keys.ok()) return ctx.fail(keys.status(), "keys list");
    if (ctx.global().json) {
        JsonDocument list = JsonDocument::array();
        for (const auto& key : keys.value()) list.push_back(key_json(key));
        return print_json(JsonDocument{{"keys", std::move(list)}});
    }
    if (keys->empty()) {
        std::printf("no keys (create one with `keyward keys create NAME --type ec-p256`)\n");
        return exit_ok;
    }
    std::printf("%-24s %-10s %-6s %s\n", "NAME", "TYPE", "BITS", "TOKEN");
    for (const auto& key : keys.value())
        std::printf("%-24s %-10s %-6u %s\n", printable(key.name).c_str(), printable(key.type).c_str(), key.bits,
                    printable(key.token).c_str());
    return exit_ok;
}

int run_keys_show(Context& ctx) {
    static const CommandSyntax syntax{
        "keys show NAME",
        "Shows a key: its type, size, token, the signature schemes it supports, the SHA-256 fingerprint of its "
        "public key, and every attribute as the agent read it back from the device.",
        {"key NAME"}};
    po::variables_map vm;
    if (auto done = parse_command(ctx, syntax, vm)) return *done;
    const std::string name = positional_arg(vm, 0);

    auto key = ctx.client().get_key(name);
    if (!key.ok()) return ctx.fail(key.status(), "keys show " + name);
    return print_key(key.value(), ctx.global().json);
}

int run_keys_pubkey(Context& ctx) {
    static const CommandSyntax syntax{"keys pubkey NAME [--out FILE]",
                                      "Writes the key's public key as a PEM SubjectPublicKeyInfo (\"PUBLIC KEY\").",
                                      {"key NAME"}};
    return write_key_file(ctx, syntax, 0644, [](const ipc::KeyInfo&, const std::string& pem) { return pem; });
}

int run_keys_ref(Context& ctx) {
    static const CommandSyntax syntax{
        "keys ref NAME [--out FILE]",
        "Writes a key-reference file: a \"KEYWARD KEY\" PEM block naming the key and carrying its public key. "
        "With the keyward OpenSSL provider active, programs that take a private key file (curl --key, nginx "
        "ssl_certificate_key, Python load_cert_chain) accept it and sign through the agent. It holds no secret.",
        {"key NAME"}};
    // 0600 like any private-key file: it is not secret, but programs such as libpq refuse
    // a key file others can read, and it says which agent key this machine's service uses.
    return write_key_file(ctx, syntax, 0600, [](const ipc::KeyInfo& key, const std::string&) {
        return encode_key_reference_pem({key.name, key.spki});
    });
}

int run_keys_cert(Context& ctx) {
    static const CommandSyntax syntax{
        "keys cert NAME [--out FILE]",
        "Writes the key's certificate as PEM, leaf first then its chain: the one stored with the key on its "
        "device (a smartcard's), for programs that want a certificate file next to the key reference.",
        {"key NAME"}};
    const auto options = out_option();
    po::variables_map vm;
    if (auto done = parse_command(ctx, syntax, options, vm)) return *done;
    const std::string name = positional_arg(vm, 0);
    const std::string action = "keys cert " + name;
    auto key = ctx.client().get_key(name);
    if (!key.ok()) return ctx.fail(key.status(), action);
    if (key->certificates.empty())
        return ctx.error("key " + name + " has no certificate (neither on its device nor from an identity)");
    std::string pem;
    for (const auto& der : key->certificates) {
        const unsigned char* p = der.data();
        pki::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
        if (!cert || p != der.data() + der.size())
            return ctx.fail(Status{ErrorCode::protocol_error, "the agent sent a certificate that is not valid DER"},
                            action);
        pem += pki::to_pem(cert.get());
    }
    if (auto s = write_output(string_option(vm, "out"), pem, 0644); !s.ok()) return ctx.error(s.message);
    return exit_ok;
}

int run_keys_create(Context& ctx) {
    static const CommandSyntax syntax{
        "keys create NAME --type TYPE [--token TOKEN]",
        "Generates a new key on a device. TYPE is one of " + key_type_names() +
            ". Without --token the agent's "
            "default token is used. The private key is created non-extractable and never leaves the device.",
        {"key NAME"}};
    po::options_description options("Options");
    options.add_options()("type", po::value<std::string>()->value_name("TYPE"), key_type_names(" | ").c_str())(
        "token", po::value<std::string>()->value_name("TOKEN"), "token to create the key on (default: agent's)");
    po::variables_map vm;
    if (auto done = parse_command(ctx, syntax, options, vm)) return *done;
    ipc::GenerateKeyRequest request{positional_arg(vm, 0), string_option(vm, "type"), string_option(vm, "token")};
    if (request.type.empty()) return ctx.usage_error("missing --type (" + key_type_names() + ")");
    if (!key_type_from_name(request.type))
        return ctx.usage_error("unknown key type \"" + request.type + "\"; use one of " + key_type_names());

    auto key = ctx.client().generate_key(request);
    if (!key.ok()) return ctx.fail(key.status(), "keys create " + request.name);
    return print_key(key.value(), ctx.global().json, "created key " + key->name);
}

int run_keys_delete(Context& ctx) {
    static const CommandSyntax syntax{
        "keys delete NAME",
        "Destroys the key on its device. There is no undo: certificates for it become useless.",
        {"key NAME"}};
    po::variables_map vm;
    if (auto done = parse_command(ctx, syntax, vm)) return *done;
    const std::string name = positional_arg(vm, 0);

    if (auto s = ctx.client().delete_key(name); !s.ok()) return ctx.fail(s, "keys delete " + name);
    if (ctx.global().json) return print_json(JsonDocument{{"deleted", name}});
    std::printf("deleted key %s\n", name.c_str());
    return exit_ok;
}

}  // namespace keyward::cli
