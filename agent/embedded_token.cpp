#include "agent/embedded_token.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "agent/embedded_pin.hpp"
#include "core/log.hpp"
#include "pkcs11/pkcs11_backend.hpp"
#include "core/durable_file.hpp"
#include "core/hex.hpp"

namespace keyward::agent {
namespace {

namespace fs = std::filesystem;

Status io_error(const std::string& what, const std::string& path) {
    return {ErrorCode::internal, what + " " + path + ": " + std::strerror(errno)};
}

Status make_private_dir(const std::string& path) {
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return io_error("cannot create", path);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return io_error("not a directory:", path);
    return {};
}

bool has_initialised_token(const std::string& token_dir) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(token_dir, ec))
        if (entry.is_directory(ec)) return true;  // SoftHSM keeps one directory per token
    return false;
}

}  // namespace

Result<TokenConfig> prepare_embedded_token(const std::string& state_dir, const std::string& seal_pin) {
    if (::access(std::string(kSoftHsmModule).c_str(), R_OK) != 0)
        return Status{ErrorCode::device_unavailable,
                      "SoftHSM2 is not installed (" + std::string(kSoftHsmModule) +
                          " missing); install the softhsm2 package or configure a token"};
    Status s = make_private_dir(state_dir);
    if (!s.ok()) return s;
    const std::string token_dir = state_dir + "/tokens";
    s = make_private_dir(token_dir);
    if (!s.ok()) return s;
    const std::string conf = state_dir + "/softhsm2.conf";
    s = files::write_atomic(conf,
                            "# Written by keywardd: the embedded token's store.\n"
                            "directories.tokendir = " +
                                token_dir +
                                "\n"
                                "objectstore.backend = file\n"
                                "log.level = ERROR\n"
                                "slots.removable = false\n",
                            0600);
    if (!s.ok()) return s;
    ::setenv("SOFTHSM2_CONF", conf.c_str(), 1);

    // The SO PIN is needed once, to initialise the token, and never again (SoftHSM2 never locks
    // the user PIN, and the user PIN stays in user.pin). Kept on disk it would only be one
    // more secret to lose, so it lives in memory for the initialisation and is then gone;
    // an so.pin left by an older keywardd is removed.
    const std::string so_pin_file = state_dir + "/so.pin";
    if (!has_initialised_token(token_dir)) {
        auto so_pin = random_pin();
        if (!so_pin.ok()) return so_pin.status();
        auto user_pin = create_embedded_pin(state_dir, plan_embedded_pin(seal_pin));
        if (!user_pin.ok()) return user_pin.status();
        log::notice("creating the embedded SoftHSM2 token in " + token_dir);
        s = pkcs11::initialize_token(std::string(kSoftHsmModule), kEmbeddedTokenLabel, so_pin.value(),
                                     user_pin.value());
        OPENSSL_cleanse(so_pin.value().data(), so_pin.value().size());
        OPENSSL_cleanse(user_pin.value().data(), user_pin.value().size());
        if (!s.ok()) return Status{s.code, "cannot create the embedded token: " + s.message};
    }
    if (::unlink(so_pin_file.c_str()) == 0) {
        (void)files::fsync_dir(state_dir);
        log::notice("removed " + so_pin_file + ": the embedded token's SO PIN is not kept");
    }

    TokenConfig tc;
    tc.name = std::string(kEmbeddedTokenName);
    tc.kind = "pkcs11";
    tc.module = std::string(kSoftHsmModule);
    tc.uri = "pkcs11:token=" + std::string(kEmbeddedTokenLabel);
    auto pin_path = embedded_pin_path(state_dir, seal_pin);
    if (!pin_path.ok()) return pin_path.status();
    tc.pin_file = std::move(pin_path).value();
    return tc;
}

}  // namespace keyward::agent
