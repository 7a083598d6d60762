#include "aplspawn/sys/lock.hpp"

#include "aplspawn/error.hpp"
#include "aplspawn/sys/fs.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <chrono>

namespace aplspawn::sys {

namespace {

// The pid in what a holder wrote ("aplspawn spawn (pid 123)"), or 0.
pid_t holder_pid(std::string_view holder) {
    auto at = holder.rfind("(pid ");
    if (at == std::string_view::npos) return 0;
    holder.remove_prefix(at + 5);
    pid_t pid = 0;
    auto [end, ec] = std::from_chars(holder.data(), holder.data() + holder.size(), pid);
    return ec == std::errc() && end != holder.data() && *end == ')' ? pid : 0;
}

bool gone(pid_t pid) { return pid > 0 && ::kill(pid, 0) < 0 && errno == ESRCH; }

}  // namespace

DirLock DirLock::acquire(const std::filesystem::path& dir, std::string_view operation) {
    ensure_dir(dir, 0700);  // a missing directory of the tool's own: only root enters it
    auto path = dir / "lock";
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd) throw_errno(fmt::format("open lock {}", path.string()));
    auto try_lock = [&] {
        if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) return true;
        if (errno != EWOULDBLOCK) throw_errno(fmt::format("lock {}", path.string()));
        return false;
    };
    if (!try_lock()) {
        char buf[128] = {};
        ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
        std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "another process";
        while (!holder.empty() && holder.back() == '\n') holder.pop_back();
        // A run killed (kill -9) just after it forked a child leaves the lock with that child
        // until it execs (the descriptor is close-on-exec), which can take a moment when the
        // child first moves itself into cgroups on a loaded machine. With the holder gone, wait
        // for that (up to 10 s) rather than name a process that no longer exists.
        bool locked = false;
        const pid_t pid = holder_pid(holder);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!locked && gone(pid) && std::chrono::steady_clock::now() < deadline) {
            ::usleep(20000);
            locked = try_lock();
        }
        if (!locked)
            throw Error(fmt::format("fleet state {} is in use by {}: wait for it to finish",
                                    dir.string(), holder));
    }
    std::string me = fmt::format("aplspawn {} (pid {})\n", operation, ::getpid());
    if (::ftruncate(fd.get(), 0) == 0) {
        ssize_t ignored = ::pwrite(fd.get(), me.data(), me.size(), 0);
        (void)ignored;
    }
    return DirLock(std::move(fd));
}

std::optional<std::string> DirLock::holder(const std::filesystem::path& dir) {
    auto path = dir / "lock";
    struct stat st;
    if (::stat(path.c_str(), &st) < 0) return std::nullopt;
    auto locks = read_file_if_exists("/proc/locks");
    if (!locks) return std::nullopt;
    // "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF": type, pid, MAJOR:MINOR:INODE
    const std::string id = fmt::format(":{}", static_cast<unsigned long long>(st.st_ino));
    const std::string dev = fmt::format("{:02x}:{:02x}{}", major(st.st_dev), minor(st.st_dev), id);
    std::string_view text(*locks);
    bool held = false;
    while (!text.empty() && !held) {
        auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        held = line.find(" FLOCK ") != std::string_view::npos &&
               (line.find(" " + dev + " ") != std::string_view::npos);
    }
    if (!held) return std::nullopt;
    std::string who = read_file_if_exists(path).value_or("another process");
    while (!who.empty() && who.back() == '\n') who.pop_back();
    return who;
}

}  // namespace aplspawn::sys
