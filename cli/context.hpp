// What every command gets: the global options, its own arguments, and a lazily opened
// connection to the agent.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/client.hpp"

namespace keyward::cli {

struct GlobalOptions {
    std::string socket;  // --socket; empty: $KEYWARD_SOCKET, else the default
    bool json = false;   // --json
    bool help = false;   // --help anywhere on the line
};

class Context {
public:
    Context(GlobalOptions global, std::string command, std::vector<std::string> args);

    const GlobalOptions& global() const noexcept { return global_; }
    // "keys create": the words that chose the command, for messages and help.
    const std::string& command() const noexcept { return command_; }
    // The tokens after the command words (global options already removed).
    const std::vector<std::string>& args() const noexcept { return args_; }

    const std::string& socket_path() const noexcept { return socket_path_; }
    // The command's connection, with the library's default timeout.
    keyward::Client& client();
    // A connection of its own with another timeout: for calls that wait on the lifecycle
    // thread (renewals talk to a CA), longer or shorter than a signature.
    std::unique_ptr<keyward::Client> client_with_timeout(std::chrono::milliseconds timeout) const;

    // Reports a failed agent call on stderr ("keyward: <action>: <why> — <what to do>")
    // and returns the exit code for it.
    int fail(const Status& status, std::string_view action) const;
    // Reports a bad command line and returns exit_usage.
    int usage_error(std::string_view message) const;
    // Reports any other failure (files, local checks) and returns exit_failure.
    int error(std::string_view message) const;

private:
    GlobalOptions global_;
    std::string command_;
    std::vector<std::string> args_;
    std::string socket_path_;
    std::unique_ptr<keyward::Client> client_;
};

}  // namespace keyward::cli
