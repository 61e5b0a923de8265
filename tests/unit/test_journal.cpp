// core/journal: audit records as journald native datagrams, against a real datagram socket.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include "core/journal.hpp"
#include "core/unique_fd.hpp"

using namespace keyward;

namespace {

struct JournalListener {
    std::string dir, path;
    UniqueFd fd;
    JournalListener() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "keyward-journal-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        dir = tmpl;
        path = dir + "/socket";
        fd = UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strcpy(addr.sun_path, path.c_str());
        REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        log::use_journal_socket_for_testing(path);
    }
    ~JournalListener() {
        log::use_journal_socket_for_testing("");
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    std::string receive() {
        char buf[65536];
        const ssize_t n = ::recv(fd.get(), buf, sizeof buf, MSG_DONTWAIT);
        return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
    }
};

}  // namespace

TEST_CASE("journal: a record goes as one datagram with its fields", "[journal]") {
    JournalListener journal;
    const log::Field fields[] = {{"KEYWARD_AUDIT_OP", "sign"}, {"KEYWARD_KEY", "web"}, {"KEYWARD_UID", "1000"}};
    log::write_fields(log::Level::notice, "audit: op=sign key=web uid=1000", fields);
    const std::string got = journal.receive();
    CHECK_THAT(got, Catch::Matchers::Contains("PRIORITY=5\n"));
    CHECK_THAT(got, Catch::Matchers::Contains("SYSLOG_IDENTIFIER=keywardd\n"));
    CHECK_THAT(got, Catch::Matchers::Contains("MESSAGE=audit: op=sign key=web uid=1000\n"));
    CHECK_THAT(got, Catch::Matchers::Contains("KEYWARD_KEY=web\n"));
    CHECK_THAT(got, Catch::Matchers::Contains("KEYWARD_UID=1000\n"));
}

TEST_CASE("journal: a value with a newline cannot start a field of its own", "[journal]") {
    const log::Field fields[] = {{"KEYWARD_KEY", "k1\nKEYWARD_UID=0"}};
    const std::string d = log::journal_datagram(log::Level::notice, "m", fields);
    // Binary form: NAME, newline, 64-bit little-endian length, the bytes, newline.
    const std::string value = "k1\nKEYWARD_UID=0";
    std::string expected = "KEYWARD_KEY\n";
    for (int i = 0; i < 8; ++i) expected.push_back(static_cast<char>(i == 0 ? value.size() : 0));
    expected += value + "\n";
    CHECK_THAT(d, Catch::Matchers::EndsWith(expected));
    // Read back as journald reads it: the forged "KEYWARD_UID=0" stays inside KEYWARD_KEY.
    std::map<std::string, std::string> parsed;
    for (size_t at = 0; at < d.size();) {
        const size_t eol = d.find('\n', at);
        REQUIRE(eol != std::string::npos);
        const std::string line = d.substr(at, eol - at);
        if (const size_t eq = line.find('='); eq != std::string::npos) {
            parsed[line.substr(0, eq)] = line.substr(eq + 1);
            at = eol + 1;
        } else {
            uint64_t n = 0;
            for (int i = 0; i < 8; ++i) n |= uint64_t(static_cast<unsigned char>(d[eol + 1 + i])) << (8 * i);
            parsed[line] = d.substr(eol + 9, n);
            at = eol + 9 + n + 1;
        }
    }
    CHECK(parsed.count("KEYWARD_UID") == 0);
    CHECK(parsed["KEYWARD_KEY"] == value);
}

TEST_CASE("journal: without a journal the record is the usual line and nothing is lost", "[journal]") {
    JournalListener journal;
    log::use_journal_socket_for_testing(journal.dir + "/no-such-socket");
    const log::Field fields[] = {{"KEYWARD_KEY", "web"}};
    // The send fails; the record falls back to stderr (not captured here) and nothing throws.
    log::write_fields(log::Level::notice, "audit: fallback", fields);
    CHECK(journal.receive().empty());
}
