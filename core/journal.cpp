#include "core/journal.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/unique_fd.hpp"

namespace keyward::log {
namespace {

constexpr const char* kJournalSocket = "/run/systemd/journal/socket";

struct JournalTarget {
    std::mutex mu;
    bool decided = false;
    std::string path;  // empty: not the journal
    UniqueFd fd;
};

JournalTarget& target() {
    static JournalTarget t;
    return t;
}

// stderr is the journal when JOURNAL_STREAM names its device and inode (systemd.exec(5)).
bool stderr_is_journal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (!stream) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0) return false;
    return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

void put(std::string& out, std::string_view name, std::string_view value) {
    if (value.find('\n') == std::string_view::npos) {
        out.append(name).append("=").append(value).append("\n");
        return;
    }
    out.append(name).append("\n");
    uint64_t n = value.size();
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
    out.append(value).append("\n");
}

bool send_datagram(JournalTarget& t, const std::string& datagram) {
    if (!t.fd) t.fd = UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!t.fd) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (t.path.size() >= sizeof addr.sun_path) return false;
    std::memcpy(addr.sun_path, t.path.c_str(), t.path.size() + 1);
    return ::sendto(t.fd.get(), datagram.data(), datagram.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
                    sizeof addr) == static_cast<ssize_t>(datagram.size());
}

}  // namespace

std::string journal_datagram(Level level, std::string_view message, std::span<const Field> fields) {
    std::string out;
    out.reserve(128 + message.size());
    put(out, "PRIORITY", std::to_string(static_cast<int>(level)));
    put(out, "SYSLOG_IDENTIFIER", "keywardd");
    put(out, "MESSAGE", message);
    for (const Field& f : fields) put(out, f.name, f.value);
    return out;
}

void use_journal_socket_for_testing(const std::string& path) {
    JournalTarget& t = target();
    std::lock_guard lock(t.mu);
    t.decided = !path.empty();
    t.path = path;
    t.fd.reset();
}

void write_fields(Level level, std::string_view message, std::span<const Field> fields) noexcept {
    if (!enabled(level)) return;
    try {
        JournalTarget& t = target();
        {
            std::lock_guard lock(t.mu);
            if (!t.decided) {
                t.decided = true;
                if (stderr_is_journal()) t.path = kJournalSocket;
            }
            if (!t.path.empty() && send_datagram(t, journal_datagram(level, message, fields))) return;
        }
        write(level, message);
    } catch (...) {
        // Logging never takes the agent down.
    }
}

}  // namespace keyward::log
