// keyward: the command-line client of keywardd. Global options may appear anywhere on the
// line; the first one or two words choose the command, which parses the rest itself.
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include <boost/program_options.hpp>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"

namespace po = boost::program_options;

namespace keyward::cli {
namespace {

struct Command {
    std::string_view group;  // "keys", or empty for a top-level command
    std::string_view name;
    std::string_view summary;
    int (*run)(Context&);
};

constexpr Command kCommands[] = {
    {"", "status", "agent version, uptime, signature count, tokens, key count", run_status},
    {"keys", "list", "list the keys", run_keys_list},
    {"keys", "show", "show a key: type, schemes, fingerprint, device attributes", run_keys_show},
    {"keys", "pubkey", "write a key's public key (PEM)", run_keys_pubkey},
    {"keys", "create", "generate a key on a device", run_keys_create},
    {"keys", "delete", "destroy a key", run_keys_delete},
    {"keys", "import", "adopt a key file a TPM made (TSS2 PRIVATE KEY)", run_keys_import},
    {"keys", "ref", "write a key-reference file for the OpenSSL provider", run_keys_ref},
    {"keys", "cert", "write the certificate kept with a key (a card's) as PEM", run_keys_cert},
    {"", "sign", "sign a file or a digest", run_sign},
    {"", "csr", "make a certificate request signed by a device key", run_csr},
    {"", "enroll", "get the first certificate of an identity", run_enroll},
    {"", "renew", "renew an identity's certificate (--now, --rekey, --compromised)", run_renew},
    {"identities", "list", "list certificate identities, renewals and failures", run_identities_list},
    {"identities", "show", "show an identity: certificate, schedule, last attempt, files", run_identities_show},
    {"identities", "rollback", "put an identity's previous generation back in force", run_identities_rollback},
    {"", "doctor", "check the agent's health (exit 0 ok, 1 warnings, 2 failures)", run_doctor},
    {"identities", "revoke", "revoke an identity's certificate (--reason, --retire)", run_identities_revoke},
};

void print_usage(FILE* out) {
    std::fprintf(out, "usage: keyward [--socket PATH] [--json] COMMAND [ARGS]\n\ncommands:\n");
    for (const auto& c : kCommands) {
        const std::string words =
            c.group.empty() ? std::string(c.name) : std::string(c.group) + " " + std::string(c.name);
        std::fprintf(out, "  %-14s %.*s\n", words.c_str(), static_cast<int>(c.summary.size()), c.summary.data());
    }
    std::fprintf(out,
                 "\nRun `keyward COMMAND --help` for a command's options.\n"
                 "Exit codes: 0 ok, 1 failure, 2 usage, 3 agent unreachable, 4 access denied, 5 no such key, "
                 "6 device error.\n");
}

int usage_error(const std::string& message) {
    std::fprintf(stderr, "keyward: %s — see `keyward --help`\n", message.c_str());
    return exit_usage;
}

}  // namespace
}  // namespace keyward::cli

int main(int argc, char** argv) {
    using namespace keyward::cli;
    GlobalOptions global;
    bool version = false;
    std::vector<std::string> words;
    try {
        po::options_description known;
        known.add(global_options_help());
        known.add_options()("version", "print the version")("words", po::value<std::vector<std::string>>());
        po::positional_options_description positional;
        positional.add("words", -1);
        // Command options are unknown here: they are passed on, in order, to the command.
        const auto parsed =
            po::command_line_parser(argc, argv).options(known).positional(positional).allow_unregistered().run();
        po::variables_map vm;
        po::store(parsed, vm);
        global.socket = vm.count("socket") ? vm["socket"].as<std::string>() : std::string();
        global.json = vm.count("json") != 0;
        global.help = vm.count("help") != 0;
        version = vm.count("version") != 0;
        words = po::collect_unrecognized(parsed.options, po::include_positional);
    } catch (const po::error& e) {
        return usage_error(e.what());
    }
    if (version) {
        std::printf("keyward %s\n", KEYWARD_VERSION);
        return exit_ok;
    }
    if (words.empty() || words.front() == "help") {
        if (global.help || (!words.empty() && words.front() == "help")) {
            print_usage(stdout);
            return exit_ok;
        }
        print_usage(stderr);
        return exit_usage;
    }

    const std::string& first = words[0];
    bool is_group = false;
    for (const auto& c : kCommands) {
        if (!c.group.empty() && c.group == first) {
            is_group = true;
            if (words.size() < 2 || c.name != words[1]) continue;
            Context ctx(global, first + " " + words[1], {words.begin() + 2, words.end()});
            return c.run(ctx);
        }
        if (c.group.empty() && c.name == first) {
            Context ctx(global, first, {words.begin() + 1, words.end()});
            return c.run(ctx);
        }
    }
    if (!is_group) return usage_error("unknown command \"" + first + "\"");
    if (words.size() < 2 && global.help) {
        print_usage(stdout);
        return exit_ok;
    }
    return usage_error(words.size() < 2 ? first + ": missing subcommand"
                                        : first + ": unknown subcommand \"" + words[1] + "\"");
}
