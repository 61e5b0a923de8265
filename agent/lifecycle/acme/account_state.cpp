#include "agent/lifecycle/acme/account_state.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "agent/lifecycle/acme/acme_objects.hpp"

namespace keyward::acme {

namespace {
std::string path_of(const std::string& dir) { return dir + "/" + kAccountStateFile; }

Status write_all(int fd, const std::string& data) {
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return {ErrorCode::internal, std::string("write: ") + std::strerror(errno)};
        done += static_cast<size_t>(n);
    }
    return Status::success();
}
}  // namespace

std::optional<AccountState> load_account_state(const std::string& state_dir) {
    std::ifstream in(path_of(state_dir), std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream text;
    text << in.rdbuf();
    Result<nlohmann::json> doc = parse_json_object(text.str(), "account state");
    if (!doc.ok()) return std::nullopt;
    AccountState s;
    for (auto [key, field] : {std::pair{"directory", &s.directory}, std::pair{"thumbprint", &s.thumbprint},
                              std::pair{"url", &s.url}}) {
        auto it = doc.value().find(key);
        if (it == doc.value().end() || !it->is_string()) return std::nullopt;
        *field = it->get<std::string>();
    }
    return s;
}

Status save_account_state(const std::string& state_dir, const AccountState& state) {
    if (::mkdir(state_dir.c_str(), 0700) != 0 && errno != EEXIST)
        return {ErrorCode::internal, state_dir + ": cannot create (" + std::strerror(errno) + ")"};
    nlohmann::json doc;
    doc["directory"] = state.directory;
    doc["thumbprint"] = state.thumbprint;
    doc["url"] = state.url;
    std::string text = doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::string final_path = path_of(state_dir);
    std::string tmp = final_path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return {ErrorCode::internal, tmp + ": cannot create (" + std::strerror(errno) + ")"};
    Status s = write_all(fd, text);
    if (s.ok() && ::fsync(fd) != 0) s = {ErrorCode::internal, tmp + ": fsync failed"};
    ::close(fd);
    if (s.ok() && ::rename(tmp.c_str(), final_path.c_str()) != 0)
        s = {ErrorCode::internal, final_path + ": rename failed (" + std::strerror(errno) + ")"};
    if (!s.ok()) {
        ::unlink(tmp.c_str());
        return s;
    }
    int dfd = ::open(state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
    return Status::success();
}

void forget_account_state(const std::string& state_dir) { ::unlink(path_of(state_dir).c_str()); }

}  // namespace keyward::acme
