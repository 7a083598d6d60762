#include "aplspawn/sys/netns.hpp"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <mutex>
#include <string>
#include <thread>

namespace aplspawn::sys {
namespace {

std::mutex dir_mutex;  // one thread at a time makes /run/netns a shared mount

// /run/netns exists and is a shared mount point (a bind mount of itself if it was none), as
// `ip netns add` leaves it.
void prepare_dir() {
    std::lock_guard lock(dir_mutex);
    const std::string dir(kNetnsDir);
    if (::mkdir("/run", 0755) < 0 && errno != EEXIST) throw_errno("create /run");
    if (::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST) throw_errno(fmt::format("create {}", dir));
    bool bound = false;
    while (::mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) < 0) {
        // EINVAL: not a mount point yet. Make it one, once.
        if (errno != EINVAL || bound) throw_errno(fmt::format("make {} a shared mount", dir));
        if (::mount(dir.c_str(), dir.c_str(), "none", MS_BIND | MS_REC, nullptr) < 0)
            throw_errno(fmt::format("bind mount {} on itself", dir));
        bound = true;
    }
}

}  // namespace

std::filesystem::path netns_path(std::string_view name) {
    return std::filesystem::path(kNetnsDir) / std::string(name);
}

void create_netns(std::string_view name) {
    const std::string path = netns_path(name).string();
    with_context(fmt::format("create network namespace {}", path), [&] {
        if (name.empty() || name.find('/') != std::string_view::npos || name == "." || name == "..")
            throw Error(fmt::format("\"{}\" cannot name a network namespace", name));
        prepare_dir();
        UniqueFd file(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0));
        if (!file) throw_errno("create the file");
        file.reset();
        // A new network namespace exists only while something holds it: a thread of our own
        // enters one (unshare changes only the calling thread's) and binds it to the name.
        int err = 0;
        const char* step = "";
        std::thread worker([&] {
            if (::unshare(CLONE_NEWNET) < 0) {
                err = errno;
                step = "unshare(CLONE_NEWNET)";
                return;
            }
            if (::mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) < 0) {
                err = errno;
                step = "bind mount the namespace";
            }
        });
        worker.join();
        if (err != 0) {
            ::unlink(path.c_str());
            throw_errno(step, err);
        }
    });
}

bool netns_exists(std::string_view name) {
    struct stat st;
    return ::lstat(netns_path(name).c_str(), &st) == 0;
}

UniqueFd open_netns(std::string_view name) { return open_netns_path(netns_path(name)); }

UniqueFd open_netns_path(const std::filesystem::path& path) {
    const std::string what = fmt::format("open network namespace {}", path.string());
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw_errno(what);
    // ENOTTY: not an nsfs file at all (a plain file, a directory).
    int type = ::ioctl(fd.get(), NS_GET_NSTYPE);
    if (type < 0 && errno != ENOTTY) throw_errno(what);
    if (type != CLONE_NEWNET)
        throw Error(fmt::format("{}: not a network namespace", what), Exit::failed, EINVAL);
    return fd;
}

Change remove_netns(std::string_view name) {
    const std::string path = netns_path(name).string();
    return with_context(fmt::format("remove network namespace {}", path), [&] {
        // EINVAL: not a mount point (a name whose creation was interrupted); ENOENT: no name.
        if (::umount2(path.c_str(), MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
            throw_errno("unmount");
        if (::unlink(path.c_str()) == 0) return Change::changed;
        if (errno == ENOENT) return Change::unchanged;
        throw_errno("remove the file");
    });
}

}  // namespace aplspawn::sys
