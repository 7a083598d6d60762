#include "aplspawn/fleet/snapshot.hpp"

#include "aplspawn/fleet/layer.hpp"
#include "aplspawn/fleet/overlay.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/lock.hpp"
#include "aplspawn/sys/mount.hpp"
#include "aplspawn/sys/remove_tree.hpp"
#include "aplspawn/sys/rootfs.hpp"
#include "fleet/provision_accounts.hpp"
#include "fleet/provision_text.hpp"

#include <sys/mount.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include <algorithm>

namespace aplspawn::fleet {
namespace {

constexpr std::uint64_t kMiB = 1u << 20;
constexpr std::string_view kWorkPrefix = "snapshot-";

// Bytes a directory tree takes on disk (st_blocks), symlinks not followed, one filesystem.
std::uint64_t disk_usage(const fs::path& dir) {
    std::uint64_t total = 0;
    std::error_code ec;
    struct stat top;
    if (::lstat(dir.c_str(), &top) < 0) return 0;
    for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) break;
        struct stat st;
        if (::lstat(it->path().c_str(), &st) < 0) continue;
        if (st.st_dev != top.st_dev) {
            it.disable_recursion_pending();
            continue;
        }
        total += static_cast<std::uint64_t>(st.st_blocks) * 512;
    }
    return total;
}

// The layer put on top of the container's for the copy: what makes the host unique is hidden
// or emptied. `view` is the container's merged root (read-only).
std::vector<std::string> scrub(const sys::RootFs& layer, const sys::RootFs& view,
                               const SnapshotSpec& s) {
    std::vector<std::string> done;
    LayerWriter w(layer, view);
    auto attrs_of = [&](std::string_view path, sys::FileAttrs fallback) {
        if (auto st = view.symlink_status(path); st && S_ISREG(st->st_mode))
            return sys::FileAttrs{static_cast<mode_t>(st->st_mode & 07777), {st->st_uid, st->st_gid}};
        return fallback;
    };
    auto empty = [&](std::string_view path, sys::FileAttrs fallback) {
        if (!view.symlink_status(path)) return;
        w.write(path, "", attrs_of(path, fallback));
        done.push_back(fmt::format("emptied {}", path));
    };
    auto hide = [&](const std::string& path) {
        if (!view.symlink_status(path)) return;
        w.whiteout(path);
        done.push_back(fmt::format("left out {}", path));
    };
    empty("/etc/machine-id", {0444, {}});
    empty("/etc/hostname", {0644, {}});
    if (auto st = view.symlink_status("/etc/hosts"); st && S_ISREG(st->st_mode)) {
        std::string hosts = view.read_file("/etc/hosts").value_or("");
        std::string clean = text::hosts_without(hosts, s.container, s.ip);
        if (clean != hosts) {
            w.write("/etc/hosts", clean, attrs_of("/etc/hosts", {0644, {}}));
            done.push_back("removed aplspawn's lines from /etc/hosts");
        }
    }
    for (const auto& name : view.list_dir("/etc/ssh"))
        if (name.starts_with("ssh_host_")) hide("/etc/ssh/" + name);
    if (auto st = view.symlink_status("/etc/passwd"); st && S_ISREG(st->st_mode))
        if (auto u = accounts::find_user(view.read_file("/etc/passwd").value_or(""), s.user);
            u && u->home.starts_with("/") && u->home != "/")
            hide(u->home + "/.ssh/authorized_keys");
    for (const char* p : {"/var/lib/aplspawn/provision", "/var/lib/systemd/random-seed",
                          "/var/lib/systemd/credential.secret"})
        hide(p);
    // The container's own journal (a directory named after its machine-id).
    for (const auto& name : view.list_dir("/var/log/journal"))
        if (text::is_valid_machine_id(name)) hide("/var/log/journal/" + name);
    return done;
}

// Takes down what is mounted below dir (deepest first) and removes it.
Change clear_work_dir(const fs::path& dir) {
    Change changed = Change::unchanged;
    std::string prefix = sys::canonical_for_mountinfo(dir).string() + "/";
    auto mounts = sys::read_mountinfo();
    std::vector<fs::path> below;
    for (const auto& m : mounts)
        if (m.mount_point.starts_with(prefix)) below.push_back(m.mount_point);
    std::sort(below.rbegin(), below.rend());
    for (const auto& m : below) changed |= sys::unmount(m, MNT_DETACH);
    changed |= sys::remove_tree_at(dir.parent_path(), dir.filename().string());
    return changed;
}

// Every snapshot-* work directory of the store's .partial (the caller holds its lock).
Change clear_leftovers(const fs::path& partial) {
    Change changed = Change::unchanged;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(partial, ec))
        if (e.path().filename().string().starts_with(kWorkPrefix))
            changed |= clear_work_dir(e.path());
    return changed;
}

}  // namespace

std::uint64_t snapshot_room(const SnapshotSpec& s) {
    return s.base_size + disk_usage(s.upper) + 64 * kMiB;
}

void check_snapshot_room(const fs::path& store, const SnapshotSpec& s) {
    const std::uint64_t need = snapshot_room(s);
    const std::uint64_t free = sys::free_space(store);
    if (free < need)
        throw Error::from_errno(
            fmt::format("no space in {}: the snapshot needs up to {} MiB, {} MiB are free",
                        store.string(), (need + kMiB - 1) / kMiB, free / kMiB),
            ENOSPC);
}

Change remove_snapshot_leftovers(const fs::path& store) {
    const fs::path partial = store / ".partial";
    std::error_code ec;
    if (!fs::is_directory(partial, ec)) return Change::unchanged;
    sys::DirLock lock = sys::DirLock::acquire(partial, "snapshot leftovers");
    return clear_leftovers(partial);
}

SnapshotResult make_snapshot(const fs::path& store, const SnapshotSpec& s) {
    const std::string file_name = s.name + ".img";
    return with_context(fmt::format("snapshot {} as {}", s.container, file_name), [&] {
        image::Store st(store, file_name);
        sys::ensure_dir(st.partial_dir(), 0700);
        // The store's lock: no getimage writes here meanwhile.
        sys::DirLock lock = sys::DirLock::acquire(st.partial_dir(), "snapshot");
        const fs::path work = st.partial_dir() / fmt::format("{}{}", kWorkPrefix, s.name);
        clear_leftovers(st.partial_dir());  // of this and of any run killed on the way

        check_snapshot_room(store, s);

        struct Cleanup {  // whatever happens: no mount and no file of this run stays
            fs::path dir;
            ~Cleanup() {
                try {
                    clear_work_dir(dir);
                } catch (...) {
                }
            }
        } cleanup{work};
        sys::ensure_dir(work, 0700);
        for (const char* d : {"view", "scrub", "root"}) sys::ensure_dir(work / d, 0755);

        // The container's root as it is: its upper over its image, read-only.
        sys::mount("overlay", work / "view", "overlay", MS_RDONLY,
                   overlay_union_data({s.upper, s.lower}));
        sys::MountGuard view_guard(work / "view");
        SnapshotResult r;
        {
            sys::RootFs view(work / "view");
            sys::RootFs layer(work / "scrub");
            r.left_out = scrub(layer, view, s);
        }
        sys::mount("overlay", work / "root", "overlay", MS_RDONLY,
                   overlay_union_data({work / "scrub", s.upper, s.lower}));
        sys::MountGuard root_guard(work / "root");
        r.packed = image::pack_root(work / "root", work / file_name);

        image::VersionInfo info;
        info.sha256 = r.packed.sha256;
        info.published_sha256 = r.packed.sha256;
        info.checksum_source = "snapshot";
        info.compression = "none";
        info.size = r.packed.size;
        info.snapshot = image::VersionInfo::Snapshot{s.container, s.group, s.base_image};
        r.version = st.install(work / file_name, info);
        image::set_sums_line(store, file_name, r.packed.sha256);
        return r;
    });
}

}  // namespace aplspawn::fleet
