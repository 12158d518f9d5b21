// POSIX implementation of the crash-safe file helpers (open/write/fsync/rename).
#include "train/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "sim/core/error.h"

namespace moecast::train {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path) {
    throw sim::IoError(what + " " + path + ": " + std::strerror(errno));
}

void write_all(int fd, std::string_view bytes, const std::string& path) {
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            ::close(fd);
            fail("cannot write", path);
        }
        done += static_cast<size_t>(n);
    }
}

}  // namespace

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw sim::InputError(path, 0, "", "a readable file");
    std::ostringstream s;
    s << in.rdbuf();
    return std::move(s).str();
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
    const std::filesystem::path target(path);
    const std::filesystem::path dir = target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail("cannot create", tmp);
    try {
        write_all(fd, bytes, tmp);
        if (::fsync(fd) != 0) {
            ::close(fd);
            fail("cannot fsync", tmp);
        }
        if (::close(fd) != 0) fail("cannot close", tmp);
        if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename onto", path);
    } catch (...) {
        ::unlink(tmp.c_str());  // no half-written file left behind
        throw;
    }
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

void append_line(const std::string& path, std::string_view line) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) fail("cannot open", path);
    std::string buf(line);
    buf += '\n';
    write_all(fd, buf, path);
    ::fsync(fd);
    ::close(fd);
}

namespace {

// Whether process `pid` may still write: it exists and is not a zombie (a killed process whose
// parent died too stays a zombie until the system reaps it, and kill(pid, 0) still finds it).
bool writer_alive(pid_t pid) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
    std::ifstream stat("/proc/" + std::to_string(static_cast<long>(pid)) + "/stat");
    std::string text;
    if (!stat || !std::getline(stat, text)) return true;  // no /proc: trust kill()
    const size_t paren = text.rfind(')');                 // "pid (comm) state ..."
    return paren == std::string::npos || paren + 2 >= text.size() || text[paren + 2] != 'Z';
}

}  // namespace

int remove_stale_temporaries(const std::string& dir) {
    namespace fs = std::filesystem;
    int removed = 0;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        const size_t at = name.rfind(".tmp.");
        if (at == std::string::npos || at + 5 >= name.size()) continue;
        const std::string pid_text = name.substr(at + 5);
        if (pid_text.find_first_not_of("0123456789") != std::string::npos || pid_text.size() > 9) continue;
        const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
        if (pid == ::getpid() || writer_alive(pid)) continue;
        if (fs::remove(entry.path(), ec)) ++removed;
    }
    return removed;
}

}  // namespace moecast::train
