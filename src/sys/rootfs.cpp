#include "aplspawn/sys/rootfs.hpp"

#include "aplspawn/sys/dir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fmt/format.h>

#include <tuple>

#include <algorithm>
#include <cerrno>
#include <cstring>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452  // the same number on every architecture (Linux 6.6+)
#endif

namespace aplspawn::sys {
namespace {

constexpr std::uint64_t kResolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
constexpr off_t kMaxRead = 16 * 1024 * 1024;

// "/etc/hostname" -> "etc/hostname"; "/" or "" -> "." (the root itself).
std::string relative(std::string_view path) {
    while (!path.empty() && path.front() == '/') path.remove_prefix(1);
    return path.empty() ? std::string(".") : std::string(path);
}

std::string shown(std::string_view path) {
    std::string r = relative(path);
    return r == "." ? std::string("/") : "/" + r;
}

std::string file_type(mode_t mode) {
    switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFLNK: return "a symlink";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFIFO: return "a FIFO";
    case S_IFSOCK: return "a socket";
    default: return "an unknown file type";
    }
}

std::string temp_name(std::string_view name) {
    std::uint64_t r = 0;
    while (::getrandom(&r, sizeof r, 0) < 0 && errno == EINTR) {
    }
    return fmt::format(".{}.aplspawn-{:016x}", name, r);
}

// readlinkat on a dir fd + name, or on an O_PATH symlink fd with an empty name.
std::optional<std::string> read_link_at(int dirfd, const char* name) {
    std::string buf(256, '\0');
    while (true) {
        ssize_t n = ::readlinkat(dirfd, name, buf.data(), buf.size());
        if (n < 0) return std::nullopt;
        if (static_cast<size_t>(n) < buf.size()) {
            buf.resize(static_cast<size_t>(n));
            return buf;
        }
        buf.resize(buf.size() * 2);
    }
}

// chmod through an fd, also an O_PATH one: fchmodat2(AT_EMPTY_PATH) (Linux 6.6+), else through
// the fd's own /proc/self/fd link, which names exactly the inode the fd holds.
int chmod_fd(int fd, mode_t mode) {
    if (::syscall(SYS_fchmodat2, fd, "", mode, AT_EMPTY_PATH) == 0) return 0;
    if (errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) return -1;
    return ::chmod(fmt::format("/proc/self/fd/{}", fd).c_str(), mode);
}

std::string read_all(int fd, std::string_view what) {
    std::string out;
    char buf[65536];
    while (true) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno(what);
        }
        if (n == 0) return out;
        out.append(buf, static_cast<size_t>(n));
        if (out.size() > static_cast<size_t>(kMaxRead))
            throw Error(fmt::format("{}: larger than 16 MiB", what));
    }
}

void write_all(int fd, std::string_view content, std::string_view what) {
    while (!content.empty()) {
        ssize_t n = ::write(fd, content.data(), content.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno(what);
        }
        content.remove_prefix(static_cast<size_t>(n));
    }
}

// Why dirfd/name, which exists, did not open as a directory.
[[noreturn]] void throw_not_a_directory(std::string_view what, const std::string& path, int dirfd,
                                        const std::string& name) {
    struct ::stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
        auto target = read_link_at(dirfd, name.c_str()).value_or("?");
        throw Error(fmt::format("{}: {} is a symlink to {}, which does not lead to a directory "
                                "inside the container root",
                                what, path, target),
                    Exit::failed, ENOTDIR);
    }
    throw Error(fmt::format("{}: {} exists and is {}, not a directory", what, path,
                            file_type(st.st_mode)),
                Exit::failed, ENOTDIR);
}

}  // namespace

std::pair<std::string, std::string> split_last(std::string_view path) {
    std::string_view p = path;
    while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
    size_t slash = p.rfind('/');
    std::string parent = slash == std::string_view::npos ? "." : std::string(p.substr(0, slash));
    if (parent.empty()) parent = "/";
    std::string name(slash == std::string_view::npos ? p : p.substr(slash + 1));
    if (name.empty() || name == "." || name == "..")
        throw Error(fmt::format("{}: not a path to a file", path));
    return {parent, name};
}

RootFs::RootFs(const std::filesystem::path& root) : path_(root) {
    fd_.reset(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd_) throw_errno(fmt::format("open container root {}", root.string()));
    open_how how{};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = kResolve;
    int probe = static_cast<int>(::syscall(SYS_openat2, fd_.get(), ".", &how, sizeof how));
    if (probe < 0) {
        int err = errno;
        if (err == ENOSYS)
            throw Error(fmt::format("open container root {}: this kernel has no openat2 (Linux "
                                    "5.6 or newer is needed to confine writes to the root)",
                                    root.string()),
                        Exit::failed, err);
        if (err == EINVAL || err == E2BIG)
            throw Error(fmt::format("open container root {}: this kernel's openat2 does not "
                                    "support RESOLVE_IN_ROOT (Linux 5.6 or newer is needed)",
                                    root.string()),
                        Exit::failed, err);
        throw_errno(fmt::format("open container root {}", root.string()), err);
    }
    ::close(probe);
}

int RootFs::open_raw(std::string_view path, int flags, mode_t mode) const {
    std::string rel = relative(path);
    open_how how{};
    how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = kResolve;
    for (int attempt = 0;; ++attempt) {
        int fd = static_cast<int>(::syscall(SYS_openat2, fd_.get(), rel.c_str(), &how, sizeof how));
        // EAGAIN: a rename raced with the lookup (RESOLVE_IN_ROOT refuses to guess): retry.
        if (fd >= 0 || errno != EAGAIN || attempt >= 16) return fd;
    }
}

UniqueFd RootFs::open_dir(std::string_view path, std::string_view what) const {
    UniqueFd fd(open_raw(path, O_PATH | O_DIRECTORY));
    if (!fd) throw_errno(fmt::format("{}: directory {}", what, shown(path)));
    return fd;
}

UniqueFd RootFs::open_regular(std::string_view path, bool follow, std::string_view what) const {
    UniqueFd pathfd(open_raw(path, O_PATH | (follow ? 0 : O_NOFOLLOW)));
    if (!pathfd) {
        if (errno == ENOENT || errno == ENOTDIR) return UniqueFd();
        throw_errno(fmt::format("{} {}", what, shown(path)));
    }
    struct ::stat st {};
    if (::fstat(pathfd.get(), &st) < 0) throw_errno(fmt::format("{} {}", what, shown(path)));
    if (!S_ISREG(st.st_mode))
        throw Error(fmt::format("{} {}: it is {}, not a regular file", what, shown(path),
                                file_type(st.st_mode)));
    // Reopen the very inode for reading: a device node or FIFO is never opened.
    UniqueFd fd(::open(fmt::format("/proc/self/fd/{}", pathfd.get()).c_str(),
                       O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd) throw_errno(fmt::format("{} {}", what, shown(path)));
    return fd;
}

std::optional<struct ::stat> RootFs::symlink_status(std::string_view path) const {
    UniqueFd fd(open_raw(path, O_PATH | O_NOFOLLOW));
    if (!fd) {
        if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
        throw_errno(fmt::format("stat {}", shown(path)));
    }
    struct ::stat st {};
    if (::fstat(fd.get(), &st) < 0) throw_errno(fmt::format("stat {}", shown(path)));
    return st;
}

std::optional<struct ::stat> RootFs::status(std::string_view path) const {
    UniqueFd fd(open_raw(path, O_PATH));
    if (!fd) {
        if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
        throw_errno(fmt::format("stat {}", shown(path)));
    }
    struct ::stat st {};
    if (::fstat(fd.get(), &st) < 0) throw_errno(fmt::format("stat {}", shown(path)));
    return st;
}

std::optional<std::string> RootFs::read_link(std::string_view path) const {
    UniqueFd fd(open_raw(path, O_PATH | O_NOFOLLOW));
    if (!fd) return std::nullopt;
    struct ::stat st {};
    if (::fstat(fd.get(), &st) < 0 || !S_ISLNK(st.st_mode)) return std::nullopt;
    return read_link_at(fd.get(), "");
}

bool RootFs::is_executable(std::string_view path) const {
    auto st = status(path);
    return st && S_ISREG(st->st_mode) && (st->st_mode & 0111);
}

std::optional<std::string> RootFs::read_file(std::string_view path) const {
    UniqueFd fd = open_regular(path, true, "read");
    if (!fd) return std::nullopt;
    return read_all(fd.get(), fmt::format("read {}", shown(path)));
}

std::vector<std::string> RootFs::list_dir(std::string_view path) const {
    std::vector<std::string> names;
    // O_DIRECTORY: the lookup fails before anything that is not a directory is opened.
    int fd = open_raw(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        if (errno == ENOENT) return names;
        throw_errno(fmt::format("list {}", shown(path)));
    }
    Dir dir = Dir::adopt(fd);
    if (!dir) throw_errno(fmt::format("list {}", shown(path)));
    errno = 0;
    while (dirent* e = dir.next()) {
        std::string_view n = e->d_name;
        if (n != "." && n != "..") names.emplace_back(n);
    }
    if (errno) throw_errno(fmt::format("list {}", shown(path)));
    std::sort(names.begin(), names.end());
    return names;
}

Change RootFs::ensure_dir(std::string_view path, const FileAttrs& attrs) const {
    const std::string what = fmt::format("create directory {}", shown(path));
    std::vector<std::string> parts;
    for (std::string_view rest = path; !rest.empty();) {
        size_t slash = rest.find('/');
        std::string_view part = rest.substr(0, slash);
        if (!part.empty() && part != ".") parts.emplace_back(part);
        if (slash == std::string_view::npos) break;
        rest.remove_prefix(slash + 1);
    }
    Change change = Change::unchanged;
    std::string prefix;
    for (size_t i = 0; i < parts.size(); ++i) {
        std::string parent = prefix.empty() ? "." : prefix;
        prefix += (prefix.empty() ? "" : "/") + parts[i];
        UniqueFd fd(open_raw(prefix, O_PATH | O_DIRECTORY));
        if (fd) continue;
        if (errno == ENOTDIR) {
            UniqueFd dir = open_dir(parent, what);
            throw_not_a_directory(what, "/" + prefix, dir.get(), parts[i]);
        }
        if (errno != ENOENT) throw_errno(fmt::format("{}: {}", what, "/" + prefix));

        UniqueFd dir = open_dir(parent, what);
        const bool last = i + 1 == parts.size();
        if (::mkdirat(dir.get(), parts[i].c_str(), 0700) < 0) {
            // EEXIST: something is there that does not resolve to a directory inside the root
            // (a symlink leading elsewhere, most likely).
            if (errno == EEXIST) throw_not_a_directory(what, "/" + prefix, dir.get(), parts[i]);
            throw_errno(fmt::format("{}: {}", what, "/" + prefix));
        }
        UniqueFd made(::openat(dir.get(), parts[i].c_str(),
                               O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!made) throw_errno(fmt::format("{}: {}", what, "/" + prefix));
        const Owner owner = last ? attrs.owner : Owner{};
        const mode_t mode = last ? attrs.mode : 0755;
        if (::fchown(made.get(), owner.uid, owner.gid) < 0 || ::fchmod(made.get(), mode) < 0)
            throw_errno(fmt::format("{}: {}", what, "/" + prefix));
        change = Change::changed;
    }
    return change;
}

Change RootFs::set_attrs(std::string_view path, const FileAttrs& attrs) const {
    const std::string what = fmt::format("set owner and mode of {}", shown(path));
    UniqueFd fd(open_raw(path, O_PATH));
    if (!fd) throw_errno(what);
    struct ::stat st {};
    if (::fstat(fd.get(), &st) < 0) throw_errno(what);
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
        throw Error(fmt::format("{}: it is {}", what, file_type(st.st_mode)));
    Change change = Change::unchanged;
    // Owner first: chown clears set-id bits, which the mode then sets as wanted.
    if (st.st_uid != attrs.owner.uid || st.st_gid != attrs.owner.gid) {
        if (::fchownat(fd.get(), "", attrs.owner.uid, attrs.owner.gid, AT_EMPTY_PATH) < 0)
            throw_errno(what);
        change = Change::changed;
        if (::fstat(fd.get(), &st) < 0) throw_errno(what);
    }
    if ((st.st_mode & 07777) != (attrs.mode & 07777)) {
        if (chmod_fd(fd.get(), attrs.mode & 07777) < 0) throw_errno(what);
        change = Change::changed;
    }
    return change;
}

Change RootFs::write_file(std::string_view path, std::string_view content,
                          const FileAttrs& attrs) const {
    const std::string what = fmt::format("write {}", shown(path));
    auto [parent, name] = with_context(what, [&] { return split_last(path); });
    UniqueFd dir = open_dir(parent, what);

    struct ::stat st {};
    if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(st.st_mode)) throw Error::from_errno(what, EISDIR);
        if (S_ISREG(st.st_mode) && (st.st_mode & 07777) == (attrs.mode & 07777) &&
            st.st_uid == attrs.owner.uid && st.st_gid == attrs.owner.gid &&
            st.st_size == static_cast<off_t>(content.size())) {
            UniqueFd cur(::openat(dir.get(), name.c_str(),
                                  O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
            struct ::stat cst {};
            if (cur && ::fstat(cur.get(), &cst) == 0 && cst.st_ino == st.st_ino &&
                cst.st_dev == st.st_dev && read_all(cur.get(), what) == content)
                return Change::unchanged;
        }
    } else if (errno != ENOENT) {
        throw_errno(what);
    }

    const std::string tmp = temp_name(name);
    UniqueFd fd(::openat(dir.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                         0600));
    if (!fd) throw_errno(what);
    try {
        write_all(fd.get(), content, what);
        if (::fchown(fd.get(), attrs.owner.uid, attrs.owner.gid) < 0 ||
            ::fchmod(fd.get(), attrs.mode & 07777) < 0 || ::fsync(fd.get()) < 0)
            throw_errno(what);
        fd.reset();
        if (::renameat(dir.get(), tmp.c_str(), dir.get(), name.c_str()) < 0) throw_errno(what);
    } catch (...) {
        ::unlinkat(dir.get(), tmp.c_str(), 0);
        throw;
    }
    return Change::changed;
}

Change RootFs::symlink(std::string_view path, std::string_view target) const {
    const std::string what = fmt::format("symlink {} -> {}", shown(path), target);
    auto [parent, name] = with_context(what, [&] { return split_last(path); });
    UniqueFd dir = open_dir(parent, what);
    struct ::stat st {};
    if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(st.st_mode)) throw Error::from_errno(what, EISDIR);
        if (S_ISLNK(st.st_mode) && read_link_at(dir.get(), name.c_str()) == target)
            return Change::unchanged;
    } else if (errno != ENOENT) {
        throw_errno(what);
    }
    const std::string tmp = temp_name(name);
    if (::symlinkat(std::string(target).c_str(), dir.get(), tmp.c_str()) < 0) throw_errno(what);
    if (::renameat(dir.get(), tmp.c_str(), dir.get(), name.c_str()) < 0) {
        int err = errno;
        ::unlinkat(dir.get(), tmp.c_str(), 0);
        throw_errno(what, err);
    }
    return Change::changed;
}

std::optional<RootFs::Entry> RootFs::find_entry(std::string_view path, const std::string& what) const {
    Entry e;
    std::string parent;
    std::tie(parent, e.name) = with_context(what, [&] { return split_last(path); });
    e.dir.reset(open_raw(parent, O_PATH | O_DIRECTORY));
    if (!e.dir) {
        if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
        throw_errno(what);
    }
    if (::fstatat(e.dir.get(), e.name.c_str(), &e.st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) return std::nullopt;
        throw_errno(what);
    }
    return e;
}

Change RootFs::remove(std::string_view path) const {
    const std::string what = fmt::format("remove {}", shown(path));
    auto e = find_entry(path, what);
    if (!e) return Change::unchanged;
    if (S_ISDIR(e->st.st_mode)) throw Error::from_errno(what, EISDIR);
    if (::unlinkat(e->dir.get(), e->name.c_str(), 0) < 0) throw_errno(what);
    return Change::changed;
}

Change RootFs::remove_empty_dir(std::string_view path) const {
    const std::string what = fmt::format("remove directory {}", shown(path));
    auto e = find_entry(path, what);
    if (!e) return Change::unchanged;
    if (::unlinkat(e->dir.get(), e->name.c_str(), S_ISDIR(e->st.st_mode) ? AT_REMOVEDIR : 0) < 0)
        throw_errno(what);
    return Change::changed;
}

Change RootFs::whiteout(std::string_view path) const {
    const std::string what = fmt::format("whiteout {}", shown(path));
    std::string parent, name;
    std::tie(parent, name) = with_context(what, [&] { return split_last(path); });
    UniqueFd dir(open_raw(parent, O_PATH | O_DIRECTORY));
    if (!dir) throw_errno(what);
    struct ::stat st {};
    if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) return Change::unchanged;
        if (S_ISDIR(st.st_mode)) throw Error::from_errno(what, EISDIR);
        if (::unlinkat(dir.get(), name.c_str(), 0) < 0) throw_errno(what);
    } else if (errno != ENOENT) {
        throw_errno(what);
    }
    if (::mknodat(dir.get(), name.c_str(), S_IFCHR | 0, makedev(0, 0)) < 0) throw_errno(what);
    return Change::changed;
}

UniqueFd RootFs::open_directory(std::string_view path) const {
    return open_dir(path, fmt::format("open {}", shown(path)));
}

}  // namespace aplspawn::sys
