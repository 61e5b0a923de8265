#include "agent/lifecycle/acme/account_state.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/lifecycle/acme/acme_objects.hpp"
#include "core/durable_file.hpp"

namespace keyward::acme {

namespace {
std::string path_of(const std::string& dir) { return dir + "/" + kAccountStateFile; }
}  // namespace

std::optional<AccountState> load_account_state(const std::string& state_dir) {
    Result<std::string> text = files::read_file(path_of(state_dir), 64 * 1024);
    if (!text.ok()) return std::nullopt;
    Result<nlohmann::json> doc = parse_json_object(text.value(), "account state");
    if (!doc.ok()) return std::nullopt;
    AccountState s;
    for (auto [key, field] :
         {std::pair{"directory", &s.directory}, std::pair{"thumbprint", &s.thumbprint}, std::pair{"url", &s.url}}) {
        auto it = doc.value().find(key);
        if (it == doc.value().end() || !it->is_string()) return std::nullopt;
        *field = it->get<std::string>();
    }
    return s;
}

Status save_account_state(const std::string& state_dir, const AccountState& state) {
    // Only a missing directory is made (0700); an existing one keeps the mode it was given.
    if (::mkdir(state_dir.c_str(), 0700) != 0 && errno != EEXIST)
        return {ErrorCode::internal, state_dir + ": cannot create (" + std::strerror(errno) + ")"};
    nlohmann::json doc;
    doc["directory"] = state.directory;
    doc["thumbprint"] = state.thumbprint;
    doc["url"] = state.url;
    return files::write_atomic(path_of(state_dir),
                               doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", 0600);
}

void forget_account_state(const std::string& state_dir) { ::unlink(path_of(state_dir).c_str()); }

}  // namespace keyward::acme
