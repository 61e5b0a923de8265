// Per-command argument parsing on top of Boost.Program_options: --help, positional
// arguments and usage errors handled the same way by every command.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/program_options.hpp>

#include "cli/context.hpp"

namespace keyward::cli {

struct CommandSyntax {
    std::string synopsis;                       // "keys create NAME --type TYPE [--token TOKEN]"
    std::string description;                    // one paragraph for --help
    std::vector<std::string_view> positionals;  // names of required positional arguments, in order
};

// Parses ctx.args() against `options` plus the positionals. On --help prints the help
// and returns exit_ok; on a bad command line reports it and returns exit_usage;
// otherwise fills `vm` and returns nullopt (the command goes on).
std::optional<int> parse_command(const Context& ctx, const CommandSyntax& syntax,
                                 const boost::program_options::options_description& options,
                                 boost::program_options::variables_map& vm);
// The same for a command that takes positional arguments only, and for one that takes none.
std::optional<int> parse_command(const Context& ctx, const CommandSyntax& syntax,
                                 boost::program_options::variables_map& vm);
std::optional<int> parse_command(const Context& ctx, const CommandSyntax& syntax);

// The index-th positional argument (parse_command has checked there are enough).
std::string positional_arg(const boost::program_options::variables_map& vm, size_t index);
// The value of a string option, or "" when it was not given.
std::string string_option(const boost::program_options::variables_map& vm, const char* name);

// The help for the global options, shared by every command's --help.
const boost::program_options::options_description& global_options_help();

}  // namespace keyward::cli
