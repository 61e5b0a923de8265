// keyward keys import NAME --tpm-key FILE [--token TOKEN]
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/json.hpp"
#include "cli/key_view.hpp"

namespace po = boost::program_options;

namespace keyward::cli {
namespace {

// A key file is a few kilobytes; anything near a frame's size is not one.
constexpr size_t kMaxKeyFileSize = 32 * 1024;

Result<std::vector<uint8_t>> read_key_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status{ErrorCode::invalid_argument, "cannot open " + path + ": " + std::strerror(errno)};
    std::vector<uint8_t> out;
    uint8_t buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int err = errno;
            ::close(fd);
            return Status{ErrorCode::invalid_argument, "cannot read " + path + ": " + std::strerror(err)};
        }
        if (n == 0) break;
        out.insert(out.end(), buf, buf + n);
        if (out.size() > kMaxKeyFileSize) {
            ::close(fd);
            return Status{ErrorCode::invalid_argument, path + " is too large for a key file"};
        }
    }
    ::close(fd);
    return out;
}

}  // namespace

int run_keys_import(Context& ctx) {
    static const CommandSyntax syntax{
        "keys import NAME --tpm-key FILE [--token TOKEN]",
        "Adopts a key another tool made inside a TPM: FILE is its wrapped blob, a \"TSS2 PRIVATE KEY\" PEM as "
        "written by `openssl genpkey -provider tpm2` or `tpm2_encodeobject`. The key stays wrapped by the TPM, which "
        "must be the one behind TOKEN (a token of kind tpm; default: the agent's default token). The agent keeps "
        "its own copy; FILE is not needed afterwards.",
        {"key NAME"}};
    po::options_description options("Options");
    options.add_options()
        ("tpm-key", po::value<std::string>()->value_name("FILE"), "the TSS2 PRIVATE KEY file to import")
        ("token", po::value<std::string>()->value_name("TOKEN"), "token to import the key into (default: agent's)");
    po::variables_map vm;
    if (auto done = parse_command(ctx, syntax, options, vm)) return *done;
    const std::string path = string_option(vm, "tpm-key");
    if (path.empty()) return ctx.usage_error("missing --tpm-key FILE");

    auto blob = read_key_file(path);
    if (!blob.ok()) return ctx.error(blob.status().message);
    ipc::ImportKeyRequest request{positional_arg(vm, 0), string_option(vm, "token"), std::move(blob).value()};

    auto key = ctx.client().import_key(request);
    if (!key.ok()) return ctx.fail(key.status(), "keys import " + request.name);
    if (ctx.global().json) {
        JsonWriter json;
        write_key_json(json, key.value());
        std::fputs(json.str().c_str(), stdout);
        return exit_ok;
    }
    std::printf("imported key %s\n%s", key->name.c_str(), key_text(key.value()).c_str());
    return exit_ok;
}

}  // namespace keyward::cli
