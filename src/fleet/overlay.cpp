#include "aplspawn/fleet/overlay.hpp"

#include "aplspawn/fleet/processes.hpp"
#include "aplspawn/sys/fs.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

namespace aplspawn::fleet {
namespace {

std::string escape_overlay_path(const fs::path& p) {
    std::string out;
    for (char c : p.string()) {
        if (c == '\\' || c == ',' || c == ':') out.push_back('\\');
        out.push_back(c);
    }
    return out;
}

// The nearest existing directory at or above p.
fs::path existing_ancestor(fs::path p) {
    std::error_code ec;
    while (!fs::exists(p, ec) && p.has_parent_path() && p.parent_path() != p) p = p.parent_path();
    return p;
}

}  // namespace

ContainerDirs container_dirs(const config::Config& c, const std::string& name,
                             const fs::path& home_path) {
    return {sys::canonical_for_mountinfo(c.paths.upper / name),
            sys::canonical_for_mountinfo(c.paths.work / name),
            sys::canonical_for_mountinfo(home_path / name)};
}

ContainerDirs container_dirs(const config::Config& c, const config::Container& ct) {
    return container_dirs(c, ct.name, ct.common().home_path);
}

void check_upper_filesystem(const config::Config& c, bool create) {
    const fs::path upper = c.paths.upper, work = c.paths.work;
    if (create) {
        sys::ensure_dir(upper, 0700);  // private: fleet/private_dirs.hpp
        sys::ensure_dir(work, 0700);
    }
    fs::path probe_dir = create ? upper : existing_ancestor(upper);
    // --dry-run changes nothing: a directory we may not write to is probed when it is real.
    if (!create && ::access(probe_dir.c_str(), W_OK) < 0) return;
    auto support = with_context(fmt::format("check {} ({})", c.where("path.imageUpperPath"),
                                            upper.string()),
                                [&] { return sys::probe_upper_layer_support(probe_dir); });
    if (!support.usable()) {
        std::string why = support.is_overlayfs
                              ? "it is on overlayfs (as inside a Docker container), and overlayfs "
                                "cannot use overlayfs as its upper layer"
                              : fmt::format("overlayfs needs d_type and trusted.* extended "
                                            "attributes there ({})",
                                            support.why_not);
        throw Error(fmt::format(
            "{}: {} cannot hold the containers' overlayfs upper layers: {}. Set "
            "path.imageUpperPath and path.imageWorkPath to a directory on ext4, xfs, btrfs or "
            "tmpfs{}",
            c.where("path.imageUpperPath"), upper.string(), why,
            support.is_overlayfs ? " (in Docker: a volume)" : ""));
    }
    if (create) {
        struct stat su, sw;
        if (::stat(upper.c_str(), &su) < 0) throw_errno(fmt::format("stat {}", upper.string()));
        if (::stat(work.c_str(), &sw) < 0) throw_errno(fmt::format("stat {}", work.string()));
        if (su.st_dev != sw.st_dev)
            throw Error(fmt::format("{}: {} is on another filesystem than path.imageUpperPath {}: "
                                    "overlayfs needs its work directory on the upper layer's "
                                    "filesystem",
                                    c.where("path.imageWorkPath"), work.string(), upper.string()));
    }
}

std::string overlay_union_data(const std::vector<fs::path>& layers) {
    std::string out = "lowerdir=";
    for (std::size_t i = 0; i < layers.size(); ++i) out += (i ? ":" : "") + escape_overlay_path(layers[i]);
    return out;
}

std::string overlay_mount_data(const fs::path& lower, const ContainerDirs& d) {
    // index=off: the upper layer stays usable with a new lower layer (a newer image version,
    // another loop device) whatever the kernel's default is.
    return fmt::format("lowerdir={},upperdir={},workdir={},index=off", escape_overlay_path(lower),
                       escape_overlay_path(d.upper), escape_overlay_path(d.work));
}

OverlayState overlay_state(const std::vector<sys::MountInfo>& mounts, const fs::path& lower,
                           const ContainerDirs& d) {
    auto top = sys::find_mount(mounts, d.merged);
    if (!top) return OverlayState::absent;
    if (top->fstype != "overlay" || sys::count_mounts(mounts, d.merged) != 1) return OverlayState::other;
    // overlayfs lists these three in this order, one after the other. Matched as one run of
    // options: libmount decodes the kernel's escapes, so a directory holding a comma is only
    // told apart from a shorter one by what follows it.
    if (top->has_super_option(fmt::format("lowerdir={},upperdir={},workdir={}", lower.string(),
                                          d.upper.string(), d.work.string())))
        return OverlayState::correct;
    return OverlayState::other;
}

bool merged_mounted(const std::vector<sys::MountInfo>& mounts, const ContainerDirs& d) {
    return sys::find_mount(mounts, d.merged).has_value();
}

Change ensure_overlay(const fs::path& lower, const ContainerDirs& d) {
    const std::string context = fmt::format("mount overlayfs on {}", d.merged.string());
    return with_context(context, [&] {
        auto mounts = sys::read_mountinfo();
        switch (overlay_state(mounts, lower, d)) {
        case OverlayState::correct: return Change::unchanged;
        case OverlayState::other: remove_overlay(d); break;
        case OverlayState::absent: break;
        }
        sys::ensure_dir(d.upper, 0755);
        sys::ensure_dir(d.work, 0755);
        sys::ensure_dir(d.merged, 0755);
        sys::mount("overlay", d.merged, "overlay", 0, overlay_mount_data(lower, d));
        return Change::changed;
    });
}

Change remove_overlay(const ContainerDirs& d) {
    Change changed = Change::unchanged;
    // Stacked mounts (an interrupted run that mounted twice): take them all down, bounded.
    for (int i = 0; i < 16; ++i) {
        auto mounts = sys::read_mountinfo();
        if (!sys::find_mount(mounts, d.merged)) return changed;
        try {
            changed |= sys::unmount(d.merged, 0, std::chrono::milliseconds(500));
        } catch (const Error& e) {
            if (e.sys_errno() != EBUSY) throw;
            // Busy with the container stopped: a helper an interrupted run left working in the
            // root (its provisioning). It has no business there any more.
            auto users = processes_using(d.merged);
            if (users.empty()) throw;
            for (const auto& p : users) send_signal(p, SIGKILL);
            for (const auto& p : users) wait_gone(p, std::chrono::seconds(5));
            changed |= sys::unmount(d.merged);
        }
    }
    throw Error(fmt::format("unmount {}: still mounted after 16 unmounts", d.merged.string()));
}

}  // namespace aplspawn::fleet
