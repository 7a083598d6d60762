#include "aplspawn/sys/remove_tree.hpp"

#include "aplspawn/sys/dir.hpp"
#include "aplspawn/sys/fd.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstring>
#include <optional>
#include <vector>

namespace aplspawn::sys {
namespace {

namespace fs = std::filesystem;

struct Where {
    std::uint64_t mnt_id = 0;
    dev_t dev = 0;
};

// statx of dirfd/name without following a final symlink; nullopt when it does not exist.
std::optional<struct statx> stat_at(int dirfd, const char* name, const fs::path& shown) {
    struct statx stx;
    int flags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | (name[0] ? 0 : AT_EMPTY_PATH);
    if (::statx(dirfd, name, flags, STATX_TYPE | STATX_MNT_ID, &stx) < 0) {
        if (errno == ENOENT) return std::nullopt;
        throw_errno(fmt::format("remove {}: stat", shown.string()));
    }
    return stx;
}

Where where_of(const struct statx& stx) {
    return {(stx.stx_mask & STATX_MNT_ID) ? stx.stx_mnt_id : 0,
            static_cast<dev_t>(makedev(stx.stx_dev_major, stx.stx_dev_minor))};
}

bool crosses(const struct statx& stx, const Where& parent) {
    Where w = where_of(stx);
    if (w.dev != parent.dev) return true;
    if (parent.mnt_id && w.mnt_id && w.mnt_id != parent.mnt_id) return true;
    return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
           (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

// Empties the directory open as dirfd (at path `shown`, on mount `here`).
void remove_contents(int dirfd, const fs::path& shown, const Where& here) {
    int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) throw_errno(fmt::format("remove {}: dup", shown.string()));
    std::vector<std::string> names;
    {
        Dir d = Dir::adopt(dup);
        if (!d) throw_errno(fmt::format("remove {}: opendir", shown.string()));
        while (dirent* e = d.next()) {
            if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
            names.emplace_back(e->d_name);
        }
    }
    for (const auto& name : names) {
        fs::path child = shown / name;
        auto stx = stat_at(dirfd, name.c_str(), child);
        if (!stx) continue;
        if (S_ISDIR(stx->stx_mode)) {
            if (crosses(*stx, here))
                throw Error(fmt::format("remove {}: it is a mount point; not crossing into it "
                                        "(unmount it first)",
                                        child.string()));
            UniqueFd sub(::openat(dirfd, name.c_str(),
                                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!sub) throw_errno(fmt::format("remove {}: open", child.string()));
            remove_contents(sub.get(), child, here);
            if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT)
                throw_errno(fmt::format("remove {}", child.string()));
        } else {
            if (::unlinkat(dirfd, name.c_str(), 0) < 0 && errno != ENOENT)
                throw_errno(fmt::format("remove {}", child.string()));
        }
    }
}

void check_name(const std::string& name, const fs::path& parent) {
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
        throw Error(fmt::format("remove {}/{}: not a single path component", parent.string(), name));
}

}  // namespace

bool exists_at(const fs::path& parent, const std::string& name) {
    check_name(name, parent);
    UniqueFd pfd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!pfd) {
        if (errno == ENOENT) return false;
        throw_errno(fmt::format("open {}", parent.string()));
    }
    return stat_at(pfd.get(), name.c_str(), parent / name).has_value();
}

Change remove_tree_at(const fs::path& parent, const std::string& name) {
    check_name(name, parent);
    const fs::path shown = parent / name;
    UniqueFd pfd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!pfd) {
        if (errno == ENOENT) return Change::unchanged;
        throw_errno(fmt::format("remove {}: open {}", shown.string(), parent.string()));
    }
    auto pstx = stat_at(pfd.get(), "", parent);
    if (!pstx) return Change::unchanged;
    Where here = where_of(*pstx);
    auto stx = stat_at(pfd.get(), name.c_str(), shown);
    if (!stx) return Change::unchanged;
    if (!S_ISDIR(stx->stx_mode)) {
        if (::unlinkat(pfd.get(), name.c_str(), 0) < 0 && errno != ENOENT)
            throw_errno(fmt::format("remove {}", shown.string()));
        return Change::changed;
    }
    if (crosses(*stx, here))
        throw Error(fmt::format("remove {}: it is a mount point; not crossing into it (unmount it "
                                "first)",
                                shown.string()));
    UniqueFd dfd(::openat(pfd.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dfd) throw_errno(fmt::format("remove {}: open", shown.string()));
    remove_contents(dfd.get(), shown, here);
    dfd.reset();
    if (::unlinkat(pfd.get(), name.c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT)
        throw_errno(fmt::format("remove {}", shown.string()));
    return Change::changed;
}

}  // namespace aplspawn::sys
