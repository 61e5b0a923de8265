// core/secret_file: PIN and auth files that other users could read are refused, with the fix.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/secret_file.hpp"

using namespace keyward;

namespace {

struct SecretDir {
    std::string path;
    SecretDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "keyward-secret-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~SecretDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string write(const std::string& name, mode_t mode) const {
        const std::string file = path + "/" + name;
        std::ofstream(file) << "1234\n";
        REQUIRE(::chmod(file.c_str(), mode) == 0);
        return file;
    }
};

}  // namespace

TEST_CASE("files::open_secret opens an owner-only file", "[secret_file]") {
    SecretDir dir;
    for (mode_t mode : {0600, 0400}) {
        auto fd = files::open_secret(dir.write("pin", mode), "the PIN file");
        REQUIRE(fd.ok());
        char c = 0;
        CHECK(::read(fd->get(), &c, 1) == 1);
        CHECK(c == '1');
    }
}

TEST_CASE("files::open_secret refuses what others can read, and says how to fix it", "[secret_file]") {
    SecretDir dir;
    for (mode_t mode : {0644, 0640, 0604, 0660}) {
        const std::string file = dir.write("loose", mode);
        auto fd = files::open_secret(file, "the PIN file");
        REQUIRE_FALSE(fd.ok());
        CHECK(fd.status().code == ErrorCode::access_denied);
        CHECK_THAT(fd.status().message, Catch::Matchers::Contains("the PIN file " + file));
        CHECK_THAT(fd.status().message, Catch::Matchers::Contains("chmod 600 " + file));
        std::filesystem::remove(file);
    }
}

TEST_CASE("files::open_secret: missing files and directories are not secrets", "[secret_file]") {
    SecretDir dir;
    auto missing = files::open_secret(dir.path + "/none", "the PIN file");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.status().code == ErrorCode::device_unavailable);
    CHECK_THAT(missing.status().message, Catch::Matchers::Contains("No such file"));

    REQUIRE(::chmod(dir.path.c_str(), 0700) == 0);
    auto directory = files::open_secret(dir.path, "the PIN file");
    REQUIRE_FALSE(directory.ok());
    CHECK_THAT(directory.status().message, Catch::Matchers::Contains("not a regular file"));
}

TEST_CASE("files::open_secret follows a symlink to an owner-only file (systemd credentials)", "[secret_file]") {
    SecretDir dir;
    const std::string target = dir.write("target", 0400);
    const std::string link = dir.path + "/link";
    REQUIRE(::symlink(target.c_str(), link.c_str()) == 0);
    CHECK(files::open_secret(link, "the PIN file").ok());
}

TEST_CASE("files::open_secret refuses a file owned by another user", "[secret_file]") {
    SecretDir dir;
    const std::string file = dir.write("foreign", 0600);
    // Only root can give a file away; CI runs as root, so this is checked there.
    REQUIRE(::geteuid() == 0);
    REQUIRE(::chown(file.c_str(), 65534, 65534) == 0);
    auto fd = files::open_secret(file, "the PIN file");
    REQUIRE_FALSE(fd.ok());
    CHECK(fd.status().code == ErrorCode::access_denied);
    CHECK_THAT(fd.status().message, Catch::Matchers::Contains("owned by uid 65534"));
}
