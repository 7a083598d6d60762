#include "aplspawn/sys/lock.hpp"

#include "aplspawn/error.hpp"
#include "aplspawn/sys/fs.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>

namespace aplspawn::sys {

DirLock DirLock::acquire(const std::filesystem::path& dir, std::string_view operation) {
    ensure_dir(dir, 0755);
    auto path = dir / "lock";
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd) throw_errno(fmt::format("open lock {}", path.string()));
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK) throw_errno(fmt::format("lock {}", path.string()));
        char buf[128] = {};
        ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
        std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "another process";
        while (!holder.empty() && holder.back() == '\n') holder.pop_back();
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

}  // namespace aplspawn::sys
