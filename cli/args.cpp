#include "cli/args.hpp"

#include <iostream>

#include "cli/exit_codes.hpp"

namespace po = boost::program_options;

namespace keyward::cli {

const po::options_description& global_options_help() {
    static const po::options_description options = [] {
        po::options_description o("Global options");
        o.add_options()("socket", po::value<std::string>()->value_name("PATH"),
                        "agent socket (default: $KEYWARD_SOCKET, else /run/keyward/agent.sock)")(
            "json", "machine-readable JSON output (status, keys, identities, enroll, renew)")(
            "help,h", "show help for the command");
        return o;
    }();
    return options;
}

std::optional<int> parse_command(const Context& ctx, const CommandSyntax& syntax,
                                 const po::options_description& options, po::variables_map& vm) {
    if (ctx.global().help) {
        std::cout << "usage: keyward " << syntax.synopsis << "\n\n" << syntax.description << "\n\n";
        if (!options.options().empty()) std::cout << options << "\n";
        std::cout << global_options_help();
        return exit_ok;
    }
    po::options_description all;
    all.add(options);
    all.add_options()("positional", po::value<std::vector<std::string>>());
    po::positional_options_description positional;
    positional.add("positional", -1);
    try {
        po::store(po::command_line_parser(ctx.args()).options(all).positional(positional).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        return ctx.usage_error(e.what());
    }
    const auto given =
        vm.count("positional") ? vm["positional"].as<std::vector<std::string>>() : std::vector<std::string>{};
    if (given.size() < syntax.positionals.size())
        return ctx.usage_error("missing " + std::string(syntax.positionals[given.size()]));
    if (given.size() > syntax.positionals.size())
        return ctx.usage_error("unexpected argument '" + given[syntax.positionals.size()] + "'");
    return std::nullopt;
}

std::optional<int> parse_command(const Context& ctx, const CommandSyntax& syntax, po::variables_map& vm) {
    static const po::options_description no_options;
    return parse_command(ctx, syntax, no_options, vm);
}

std::optional<int> parse_command(const Context& ctx, const CommandSyntax& syntax) {
    po::variables_map vm;
    return parse_command(ctx, syntax, vm);
}

std::string positional_arg(const po::variables_map& vm, size_t index) {
    return vm["positional"].as<std::vector<std::string>>().at(index);
}

std::string string_option(const po::variables_map& vm, const char* name) {
    return vm.count(name) ? vm[name].as<std::string>() : std::string();
}

}  // namespace keyward::cli
