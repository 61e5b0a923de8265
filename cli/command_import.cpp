// keyward keys import NAME --tpm-key FILE [--token TOKEN]
#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/key_view.hpp"
#include "core/durable_file.hpp"

namespace po = boost::program_options;

namespace keyward::cli {
namespace {

// A key file is a few kilobytes; anything near a frame's size is not one.
constexpr size_t kMaxKeyFileSize = 32 * 1024;

}  // namespace

int run_keys_import(Context& ctx) {
    static const CommandSyntax syntax{
        "keys import NAME --tpm-key FILE [--token TOKEN]",
        "Adopts a key another tool made inside a TPM: FILE is its wrapped blob, a \"TSS2 PRIVATE KEY\" PEM as "
        "written by `openssl genpkey -provider tpm2` or `tpm2_encodeobject`. The key stays wrapped by the TPM, which "
        "must be the one behind TOKEN (a token of kind tpm; default: the agent's default token). The agent keeps "
        "its own copy; FILE is not needed afterwards.",
        {"key NAME"}};
    po::options_description options("Options");
    options.add_options()("tpm-key", po::value<std::string>()->value_name("FILE"),
                          "the TSS2 PRIVATE KEY file to import")("token", po::value<std::string>()->value_name("TOKEN"),
                                                                 "token to import the key into (default: agent's)");
    po::variables_map vm;
    if (auto done = parse_command(ctx, syntax, options, vm)) return *done;
    const std::string path = string_option(vm, "tpm-key");
    if (path.empty()) return ctx.usage_error("missing --tpm-key FILE");

    auto file = files::read_file(path, kMaxKeyFileSize);
    if (!file.ok()) return ctx.error(file.status().message);
    if (file->empty()) return ctx.error(path + " is empty or unreadable, not a key file");
    ipc::ImportKeyRequest request{positional_arg(vm, 0), string_option(vm, "token"),
                                  std::vector<uint8_t>(file->begin(), file->end())};

    auto key = ctx.client().import_key(request);
    if (!key.ok()) return ctx.fail(key.status(), "keys import " + request.name);
    return print_key(key.value(), ctx.global().json, "imported key " + key->name);
}

}  // namespace keyward::cli
