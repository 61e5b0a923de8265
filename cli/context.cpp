#include "cli/context.hpp"

#include <cctype>
#include <cstdio>

#include "cli/exit_codes.hpp"

namespace keyward::cli {
namespace {

// What the user can do about each failure; empty when the message says it all.
std::string_view hint_for(ErrorCode code) {
    switch (code) {
        case ErrorCode::agent_unreachable: return "is keywardd running? Set --socket or KEYWARD_SOCKET";
        case ErrorCode::timeout: return "the agent is stuck or overloaded; check its log (journalctl -u keywardd)";
        case ErrorCode::connection_lost:
            return "the agent closed the connection; check its log (journalctl -u keywardd) and try again";
        case ErrorCode::protocol_error:
            return "the agent and this keyward do not understand each other; are they the same release?";
        case ErrorCode::unsupported_version:
            return "the agent is older or newer than this keyward; upgrade one of them";
        case ErrorCode::access_denied:
            return "ask an administrator to add your user or group to the key's allow_users / allow_groups";
        case ErrorCode::no_such_key: return "`keyward keys list` shows the keys you may use";
        case ErrorCode::device_unavailable:
            return "is the token present and its PIN right? The agent picks it up again once it is back";
        case ErrorCode::device_error: return "the device refused the operation; the agent's log has the details";
        case ErrorCode::key_exists: return "delete it first (keyward keys delete NAME) or choose another name";
        case ErrorCode::unsupported_scheme: return "`keyward keys show NAME` lists the schemes the key supports";
        case ErrorCode::busy: return "the agent is saturated; try again shortly";
        case ErrorCode::no_such_token: return "`keyward status` lists the agent's tokens";
        default: return {};
    }
}

// A short label for failures whose message may not name the kind of failure itself.
std::string_view label_for(ErrorCode code) {
    switch (code) {
        case ErrorCode::access_denied: return "access denied";
        case ErrorCode::no_such_key: return "no such key";
        case ErrorCode::device_unavailable: return "device unavailable";
        case ErrorCode::device_error: return "device error";
        case ErrorCode::key_exists: return "key already exists";
        case ErrorCode::unsupported_scheme: return "unsupported scheme";
        case ErrorCode::no_such_token: return "no such token";
        default: return {};
    }
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool is_transport(ErrorCode code) { return static_cast<uint16_t>(code) >= 100; }

}  // namespace

Context::Context(GlobalOptions global, std::string command, std::vector<std::string> args)
        : global_(std::move(global)),
          command_(std::move(command)),
          args_(std::move(args)),
          socket_path_(keyward::resolve_socket_path(global_.socket)) {}

keyward::Client& Context::client() {
    if (!client_) client_ = client_with_timeout(keyward::ClientOptions{}.timeout);
    return *client_;
}

std::unique_ptr<keyward::Client> Context::client_with_timeout(std::chrono::milliseconds timeout) const {
    keyward::ClientOptions options;
    options.socket_path = socket_path_;
    options.client_name = "keyward-cli";
    options.timeout = timeout;
    return std::make_unique<keyward::Client>(std::move(options));
}

int Context::fail(const Status& status, std::string_view action) const {
    std::string text = "keyward: ";
    std::string why = status.message.empty() ? std::string(error_code_name(status.code)) : status.message;
    if (is_transport(status.code)) {
        // The transport failure is the story; say where we looked.
        if (why.find(socket_path_) == std::string::npos) why += " (agent socket " + socket_path_ + ")";
    } else {
        text += std::string(action) + ": ";
        const std::string_view label = label_for(status.code);
        if (!label.empty() && lower(why).find(label) == std::string::npos) why = std::string(label) + ": " + why;
    }
    text += why;
    std::string_view hint = hint_for(status.code);
    // The agent names the setting that grants what was refused; managing keys is another right.
    if (status.code == ErrorCode::access_denied && status.message.find("admin_users") != std::string::npos)
        hint = "ask an administrator to add your user or group to admin_users / admin_groups";
    if (!hint.empty()) text += " — " + std::string(hint);
    std::fprintf(stderr, "%s\n", text.c_str());
    return exit_code_for(status.code);
}

int Context::usage_error(std::string_view message) const {
    std::fprintf(stderr, "keyward: %s: %.*s — see `keyward %s --help`\n", command_.c_str(),
                 static_cast<int>(message.size()), message.data(), command_.c_str());
    return exit_usage;
}

int Context::error(std::string_view message) const {
    std::fprintf(stderr, "keyward: %s: %.*s\n", command_.c_str(), static_cast<int>(message.size()), message.data());
    return exit_failure;
}

}  // namespace keyward::cli
