#include "aplspawn/sys/fs.hpp"

#include "aplspawn/sys/fd.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fmt/format.h>

#include <random>

namespace aplspawn::sys {

void sync_dir(const fs::path& dir) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) throw_errno(fmt::format("open directory {}", dir.string()));
    if (::fsync(fd.get()) < 0) throw_errno(fmt::format("fsync {}", dir.string()));
}

void write_file_atomic(const fs::path& path, std::string_view content, mode_t mode) {
    fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
    std::random_device rd;
    fs::path tmp = dir / fmt::format(".{}.tmp{:08x}", path.filename().string(), rd());
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
    if (!fd) {
        int err = errno;
        if (is_no_space(err)) throw no_space_error(fmt::format("write {}", path.string()), dir, err);
        throw_errno(fmt::format("create {}", tmp.string()), err);
    }
    // On any failure the temporary file goes: no half-written file is left, under either name.
    auto fail = [&](std::string_view what) {
        int err = errno;
        ::unlink(tmp.c_str());
        if (is_no_space(err)) throw no_space_error(fmt::format("{} {}", what, path.string()), dir, err);
        throw_errno(fmt::format("{} {}", what, path.string()), err);
    };
    if (::fchmod(fd.get(), mode) < 0) fail("chmod");
    std::string_view rest = content;
    while (!rest.empty()) {
        ssize_t n = ::write(fd.get(), rest.data(), rest.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("write");
        }
        rest.remove_prefix(static_cast<size_t>(n));
    }
    if (::fsync(fd.get()) < 0) fail("fsync");
    fd.reset();
    if (::rename(tmp.c_str(), path.c_str()) < 0) fail("rename into");
    sync_dir(dir);
}

std::optional<std::string> read_file_if_exists(const fs::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) return std::nullopt;
        throw_errno(fmt::format("read {}", path.string()));
    }
    std::string out;
    char buf[65536];
    while (true) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno(fmt::format("read {}", path.string()));
        }
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

std::string read_file(const fs::path& path) {
    auto s = read_file_if_exists(path);
    if (!s) throw Error::from_errno(fmt::format("read {}", path.string()), ENOENT);
    return *s;
}

Change ensure_dir(const fs::path& path, mode_t mode) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            throw Error::from_errno(fmt::format("create directory {}", path.string()), ENOTDIR);
        return Change::unchanged;
    }
    if (errno != ENOENT) throw_errno(fmt::format("stat {}", path.string()));
    // As mkdir -p -m: `mode` is the directory's own; missing parents get the usual 0755.
    if (path.has_parent_path() && path.parent_path() != path) ensure_dir(path.parent_path(), 0755);
    if (::mkdir(path.c_str(), mode) < 0 && errno != EEXIST)
        throw_errno(fmt::format("create directory {}", path.string()));
    return Change::changed;
}

std::optional<mode_t> ensure_dir_restricted(const fs::path& path, mode_t mode) {
    struct stat st;
    if (::stat(path.c_str(), &st) < 0) {
        if (errno != ENOENT) throw_errno(fmt::format("stat {}", path.string()));
        if (path.has_parent_path() && path.parent_path() != path) ensure_dir(path.parent_path(), 0755);
        if (::mkdir(path.c_str(), mode) < 0 && errno != EEXIST)
            throw_errno(fmt::format("create directory {}", path.string()));
        if (::stat(path.c_str(), &st) < 0) throw_errno(fmt::format("stat {}", path.string()));
        // mkdir's mode went through the umask: make it exactly `mode`'s bits at most.
        if ((st.st_mode & 07777 & ~mode) == 0) return std::nullopt;
        if (::chmod(path.c_str(), st.st_mode & 07777 & mode) < 0)
            throw_errno(fmt::format("chmod {}", path.string()));
        return std::nullopt;
    }
    if (!S_ISDIR(st.st_mode))
        throw Error::from_errno(fmt::format("create directory {}", path.string()), ENOTDIR);
    const mode_t was = st.st_mode & 07777;
    if ((was & ~mode) == 0) return std::nullopt;
    if (::chmod(path.c_str(), was & mode) < 0)
        throw_errno(fmt::format("restrict {} to mode {:04o}", path.string(), was & mode));
    return was;
}

bool is_no_space(int err) { return err == ENOSPC || err == EDQUOT; }

namespace {

std::string no_space_text(const fs::path& dir) {
    std::string free;
    try {
        free = fmt::format(", {} bytes free", free_space(dir));
    } catch (const Error&) {
    }
    return fmt::format("no space left on the filesystem of {}{}: free space there and run the "
                       "command again",
                       dir.string(), free);
}

}  // namespace

Error no_space_error(std::string_view context, const fs::path& dir, int err) {
    return Error(fmt::format("{}: {}", context, no_space_text(dir)), Exit::failed, err);
}

Error with_no_space_hint(Error e, const fs::path& dir) {
    if (!is_no_space(e.sys_errno())) return e;
    return Error(fmt::format("{} ({})", e.message(), no_space_text(dir)), e.exit_code(), e.sys_errno());
}

std::uint64_t free_space(const fs::path& path) {
    fs::path p = path;
    struct statvfs st;
    while (::statvfs(p.c_str(), &st) < 0) {
        if (errno != ENOENT || !p.has_parent_path() || p.parent_path() == p)
            throw_errno(fmt::format("statvfs {}", path.string()));
        p = p.parent_path();
    }
    return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

}  // namespace aplspawn::sys
