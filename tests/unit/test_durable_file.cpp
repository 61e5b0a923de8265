// core/durable_file: files published without ever replacing one.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/durable_file.hpp"

using namespace keyward;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "keyward-durable-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    size_t entries() const {
        size_t n = 0;
        for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(path)) ++n;
        return n;
    }
};

}  // namespace

TEST_CASE("files::publish_new writes a new file with its mode and leaves no temp file", "[durable_file]") {
    TempDir dir;
    const std::string path = dir.path + "/key.pem";
    REQUIRE(files::publish_new(path, "first", 0600).ok());
    auto read = files::read_file(path);
    REQUIRE(read.ok());
    CHECK(read.value() == "first");
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(dir.entries() == 1);
}

TEST_CASE("files::publish_new never replaces an existing file", "[durable_file]") {
    TempDir dir;
    const std::string path = dir.path + "/key.pem";
    REQUIRE(files::publish_new(path, "first", 0600).ok());
    const Status second = files::publish_new(path, "second", 0600);
    CHECK(second.code == ErrorCode::key_exists);
    CHECK(second.message.find(path) != std::string::npos);
    CHECK(files::read_file(path).value() == "first");
    CHECK(dir.entries() == 1);  // the loser's temp file is gone too
}

TEST_CASE("files::publish_new names the path when the directory is missing", "[durable_file]") {
    TempDir dir;
    const std::string path = dir.path + "/missing/key.pem";
    const Status s = files::publish_new(path, "x", 0600);
    CHECK_FALSE(s.ok());
    CHECK(s.code != ErrorCode::key_exists);
    CHECK(s.message.find(dir.path + "/missing/") != std::string::npos);
}
