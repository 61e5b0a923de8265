#include "agent/lifecycle/store.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/durable_file.hpp"

namespace keyward::lifecycle {
namespace {

std::optional<int> gen_number(const std::string& name) {
    if (name.rfind("gen-", 0) != 0 || name.size() <= 4 || name.size() > 13) return std::nullopt;
    int n = 0;
    for (size_t i = 4; i < name.size(); ++i) {
        if (name[i] < '0' || name[i] > '9') return std::nullopt;
        n = n * 10 + (name[i] - '0');
    }
    return n > 0 ? std::optional<int>(n) : std::nullopt;
}

}  // namespace

std::string IdentityStore::gen_dir(int number) const { return dir_ + "/gen-" + std::to_string(number); }

GenerationFiles IdentityStore::current_files() const {
    const std::string c = dir_ + "/current/";
    return {c + "cert.pem", c + "chain.pem", c + "fullchain.pem", c + "key.ref"};
}

Status IdentityStore::prepare() const { return files::make_dirs(dir_, 0755); }

std::optional<Generation> IdentityStore::load_link(const char* link) const {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(dir_ + "/" + link, ec);
    if (ec) return std::nullopt;
    auto number = gen_number(target.filename().string());
    if (!number) return std::nullopt;
    Generation g;
    g.dir = gen_dir(*number);
    auto meta = files::read_file(g.dir + "/meta.json");
    auto cert = files::read_file(g.dir + "/cert.pem");
    auto chain = files::read_file(g.dir + "/chain.pem");
    if (!meta.ok() || !cert.ok() || !chain.ok()) return std::nullopt;
    try {
        auto j = nlohmann::json::parse(meta.value());
        g.meta.number = j.at("generation").get<int>();
        g.meta.key = j.at("key").get<std::string>();
        g.meta.request_id = j.value("request_id", "");
        g.meta.created = j.value("created", int64_t{0});
        g.meta.reason = j.value("reason", "");
    } catch (const std::exception&) {
        return std::nullopt;
    }
    if (g.meta.number != *number) return std::nullopt;
    g.cert_pem = std::move(cert.value());
    g.chain_pem = std::move(chain.value());
    return g;
}

std::optional<Generation> IdentityStore::current() const { return load_link("current"); }
std::optional<Generation> IdentityStore::previous() const { return load_link("previous"); }

int IdentityStore::next_number() const {
    int top = 0;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir_, ec))
        if (auto n = gen_number(entry.path().filename().string())) top = std::max(top, *n);
    return top + 1;
}

Status IdentityStore::write_generation(const GenerationMeta& meta, const std::string& cert_pem,
                                       const std::string& chain_pem, const std::string& keyref_pem) const {
    const std::string dir = gen_dir(meta.number);
    std::error_code ec;
    if (std::filesystem::exists(dir, ec)) std::filesystem::remove_all(dir, ec);  // a torn earlier attempt
    if (::mkdir(dir.c_str(), 0755) != 0) return {ErrorCode::internal, "cannot create " + dir};
    nlohmann::ordered_json j;
    j["generation"] = meta.number;
    j["key"] = meta.key;
    j["request_id"] = meta.request_id;
    j["created"] = meta.created;
    j["reason"] = meta.reason;
    const struct {
        const char* name;
        std::string data;
    } parts[] = {
        {"cert.pem", cert_pem},  {"chain.pem", chain_pem},        {"fullchain.pem", cert_pem + chain_pem},
        {"key.ref", keyref_pem}, {"meta.json", j.dump(2) + "\n"},  // last: its presence marks a complete generation
    };
    for (const auto& p : parts)
        if (Status s = files::write_new(dir + "/" + p.name, p.data, 0644); !s.ok()) return s;
    if (Status s = files::fsync_dir(dir); !s.ok()) return s;
    return files::fsync_dir(dir_);
}

Status IdentityStore::switch_to(int number, int previous_number) const {
    if (previous_number > 0) {
        if (Status s = files::switch_symlink(dir_ + "/previous", "gen-" + std::to_string(previous_number)); !s.ok())
            return s;
    }
    return files::switch_symlink(dir_ + "/current", "gen-" + std::to_string(number));
}

void IdentityStore::prune() const {
    auto keep_of = [this](const char* link) -> std::string {
        std::error_code ec;
        auto t = std::filesystem::read_symlink(dir_ + "/" + link, ec);
        return ec ? std::string() : t.filename().string();
    };
    const std::string cur = keep_of("current"), prev = keep_of("previous");
    std::error_code ec;
    std::vector<std::filesystem::path> doomed;
    for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
        const std::string name = entry.path().filename().string();
        const bool generation = gen_number(name).has_value();
        const bool leftover = name.find(".tmp-") != std::string::npos;
        if ((generation && name != cur && name != prev) || leftover) doomed.push_back(entry.path());
    }
    for (const auto& p : doomed) std::filesystem::remove_all(p, ec);
    if (!doomed.empty()) files::fsync_dir(dir_);
}

Status IdentityStore::remove_all_generations() const {
    for (const char* link : {"current", "previous"}) {
        const std::string path = dir_ + "/" + link;
        if (::unlink(path.c_str()) != 0 && errno != ENOENT)
            return Status{ErrorCode::internal, "cannot remove " + path + ": " + std::strerror(errno)};
        files::fsync_dir(dir_);
    }
    std::error_code ec;
    std::vector<std::filesystem::path> doomed;
    for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
        const std::string name = entry.path().filename().string();
        if (gen_number(name).has_value() || name.find(".tmp-") != std::string::npos) doomed.push_back(entry.path());
    }
    for (const auto& p : doomed) {
        std::filesystem::remove_all(p, ec);
        if (ec) return Status{ErrorCode::internal, "cannot remove " + p.string() + ": " + ec.message()};
    }
    files::fsync_dir(dir_);
    return {};
}

}  // namespace keyward::lifecycle
