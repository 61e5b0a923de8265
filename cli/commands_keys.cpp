// keyward keys list | show | pubkey | create | delete | ref
#include <array>
#include <cstdio>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/io.hpp"
#include "cli/json.hpp"
#include "cli/key_view.hpp"
#include "ipc/keyref.hpp"

namespace po = boost::program_options;

namespace keyward::cli {
namespace {

constexpr std::array<std::string_view, 5> kKeyTypes = {"ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"};

int print_json(JsonWriter& json) {
    std::fputs(json.str().c_str(), stdout);
    return exit_ok;
}

int write_or_fail(const Context& ctx, const std::string& path, std::string_view text) {
    if (auto s = write_output(path, text); !s.ok()) return ctx.error(s.message);
    return exit_ok;
}

po::options_description out_option() {
    po::options_description options("Options");
    options.add_options()("out", po::value<std::string>()->value_name("FILE"), "write to FILE instead of stdout");
    return options;
}

}  // namespace

int run_keys_list(Context& ctx) {
    static const CommandSyntax syntax{"keys list", "Lists the keys the agent holds that you may see.", {}};
    po::options_description options;
    po::variables_map vm;
    if (auto done = parse_command(ctx, syntax, options, vm)) return *done;

    auto keys = ctx.client().list_keys();
    if (!keys.ok()) return ctx.fail(keys.status(), "keys list");
    if (ctx.global().json) {
        JsonWriter json;
        json.begin_object().key("keys").begin_array();
        for (const auto& key : keys.value()) write_key_json(json, key);
        json.end_array().end_object();
        return print_json(json);
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
    po::options_description options;
    po::variables_map vm;
    if (auto done = parse_command(ctx, syntax, options, vm)) return *done;
    const std::string name = positional_arg(vm, 0);

    auto key = ctx.client().get_key(name);
    if (!key.ok()) return ctx.fail(key.status(), "keys show " + name);
    if (ctx.global().json) {
        JsonWriter json;
        write_key_json(json, key.value());
        return print_json(json);
    }
    std::fputs(key_text(key.value()).c_str(), stdout);
    return exit_ok;
}

int run_keys_pubkey(Context& ctx) {
    static const CommandSyntax syntax{"keys pubkey NAME [--out FILE]",
                                      "Writes the key's public key as a PEM SubjectPublicKeyInfo (\"PUBLIC KEY\").",
                                      {"key NAME"}};
    const auto options = out_option();
    po::variables_map vm;
    if (auto done = parse_command(ctx, syntax, options, vm)) return *done;
    const std::string name = positional_arg(vm, 0);

    auto key = ctx.client().get_key(name);
    if (!key.ok()) return ctx.fail(key.status(), "keys pubkey " + name);
    auto pem = spki_pem(key->spki);
    if (!pem.ok()) return ctx.fail(pem.status(), "keys pubkey " + name);
    return write_or_fail(ctx, string_option(vm, "out"), pem.value());
}

int run_keys_ref(Context& ctx) {
    static const CommandSyntax syntax{
        "keys ref NAME [--out FILE]",
        "Writes a key-reference file: a \"KEYWARD KEY\" PEM block naming the key and carrying its public key. "
        "With the keyward OpenSSL provider active, programs that take a private key file (curl --key, nginx "
        "ssl_certificate_key, Python load_cert_chain) accept it and sign through the agent. It holds no secret.",
        {"key NAME"}};
    const auto options = out_option();
    po::variables_map vm;
    if (auto done = parse_command(ctx, syntax, options, vm)) return *done;
    const std::string name = positional_arg(vm, 0);

    auto key = ctx.client().get_key(name);
    if (!key.ok()) return ctx.fail(key.status(), "keys ref " + name);
    // Check the public key before vouching for it in a file others will load.
    if (auto pem = spki_pem(key->spki); !pem.ok()) return ctx.fail(pem.status(), "keys ref " + name);
    const std::string ref = encode_key_reference_pem({key->name, key->spki});
    return write_or_fail(ctx, string_option(vm, "out"), ref);
}

int run_keys_create(Context& ctx) {
    static const CommandSyntax syntax{
        "keys create NAME --type TYPE [--token TOKEN]",
        "Generates a new key on a device. TYPE is one of ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096. Without "
        "--token the agent's default token is used. The private key is created non-extractable and never leaves "
        "the device.",
        {"key NAME"}};
    po::options_description options("Options");
    options.add_options()
        ("type", po::value<std::string>()->value_name("TYPE"), "ec-p256 | ec-p384 | rsa-2048 | rsa-3072 | rsa-4096")
        ("token", po::value<std::string>()->value_name("TOKEN"), "token to create the key on (default: agent's)");
    po::variables_map vm;
    if (auto done = parse_command(ctx, syntax, options, vm)) return *done;
    ipc::GenerateKeyRequest request{positional_arg(vm, 0), string_option(vm, "type"), string_option(vm, "token")};
    if (request.type.empty()) return ctx.usage_error("missing --type (ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096)");
    bool known = false;
    for (auto t : kKeyTypes) known = known || t == request.type;
    if (!known)
        return ctx.usage_error("unknown key type \"" + request.type +
                               "\"; use ec-p256, ec-p384, rsa-2048, rsa-3072 or rsa-4096");

    auto key = ctx.client().generate_key(request);
    if (!key.ok()) return ctx.fail(key.status(), "keys create " + request.name);
    if (ctx.global().json) {
        JsonWriter json;
        write_key_json(json, key.value());
        return print_json(json);
    }
    std::printf("created key %s\n%s", key->name.c_str(), key_text(key.value()).c_str());
    return exit_ok;
}

int run_keys_delete(Context& ctx) {
    static const CommandSyntax syntax{
        "keys delete NAME",
        "Destroys the key on its device. There is no undo: certificates for it become useless.",
        {"key NAME"}};
    po::options_description options;
    po::variables_map vm;
    if (auto done = parse_command(ctx, syntax, options, vm)) return *done;
    const std::string name = positional_arg(vm, 0);

    if (auto s = ctx.client().delete_key(name); !s.ok()) return ctx.fail(s, "keys delete " + name);
    if (ctx.global().json) {
        JsonWriter json;
        json.begin_object().member("deleted", name).end_object();
        return print_json(json);
    }
    std::printf("deleted key %s\n", name.c_str());
    return exit_ok;
}

}  // namespace keyward::cli
