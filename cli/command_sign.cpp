// keyward sign NAME --scheme SCHEME (--in FILE | --digest HEX) [--out FILE]
#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "core/hex.hpp"
#include "cli/io.hpp"

namespace po = boost::program_options;

namespace keyward::cli {
namespace {

std::string known_scheme_names() {
    std::string names;
    for (const auto& info : all_schemes()) names += (names.empty() ? "" : ", ") + std::string(info.name);
    return names;
}

}  // namespace

int run_sign(Context& ctx) {
    static const CommandSyntax syntax{
        "sign NAME --scheme SCHEME (--in FILE | --digest HEX) [--out FILE]",
        "Signs with a key held by the agent. With --in, FILE (\"-\" for stdin) is hashed here with the scheme's "
        "digest; with --digest the hex digest is sent as given. The raw signature (DER for ECDSA, the plain "
        "block for RSA) goes to --out or stdout. Schemes: " +
            known_scheme_names() + ".",
        {"key NAME"}};
    po::options_description options("Options");
    options.add_options()("scheme", po::value<std::string>()->value_name("SCHEME"),
                          "signature scheme, e.g. ecdsa_secp256r1_sha256")(
        "in", po::value<std::string>()->value_name("FILE"), "data to hash and sign (\"-\": stdin)")(
        "digest", po::value<std::string>()->value_name("HEX"), "an already computed digest, in hex")(
        "out", po::value<std::string>()->value_name("FILE"), "write the signature to FILE instead of stdout");
    po::variables_map vm;
    if (auto done = parse_command(ctx, syntax, options, vm)) return *done;
    const std::string name = positional_arg(vm, 0);

    const std::string scheme_name = string_option(vm, "scheme");
    if (scheme_name.empty()) return ctx.usage_error("missing --scheme (one of " + known_scheme_names() + ")");
    const SchemeInfo* scheme = scheme_by_name(scheme_name);
    if (!scheme)
        return ctx.usage_error("unknown scheme \"" + scheme_name + "\"; known schemes: " + known_scheme_names());
    const bool have_in = vm.count("in") != 0, have_digest = vm.count("digest") != 0;
    if (have_in == have_digest) return ctx.usage_error("give exactly one of --in FILE and --digest HEX");

    std::vector<uint8_t> digest;
    if (have_digest) {
        auto bytes = from_hex(string_option(vm, "digest"));
        if (!bytes) return ctx.usage_error("--digest must be an even number of hex digits");
        digest = std::move(*bytes);
        if (digest.size() != scheme->digest_size)
            return ctx.error("the digest is " + std::to_string(digest.size()) + " bytes, but " + scheme_name +
                             " needs a " + std::to_string(scheme->digest_size) + "-byte " +
                             std::string(scheme->digest) + " digest");
    } else {
        auto hashed = digest_file(string_option(vm, "in"), scheme->digest);
        if (!hashed.ok()) return ctx.error(hashed.status().message);
        digest = std::move(hashed.value());
    }

    auto signature = ctx.client().sign(name, scheme->scheme, digest);
    if (!signature.ok()) return ctx.fail(signature.status(), "sign with " + name + " using " + scheme_name);
    if (auto s = write_output(string_option(vm, "out"), std::span<const uint8_t>(signature.value())); !s.ok())
        return ctx.error(s.message);
    return exit_ok;
}

}  // namespace keyward::cli
