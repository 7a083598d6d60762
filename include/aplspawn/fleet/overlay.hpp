// Each container's root: an overlayfs of the shared read-only lower layer (the image) and the
// container's own upper directory, mounted at its merged directory.
//   upper  = path.imageUpperPath/NAME   the container's data: kept by stop, removed by cleanup
//   work   = path.imageWorkPath/NAME    overlayfs' scratch space (same filesystem as upper)
//   merged = cntCommon.homePath/NAME    what systemd-nspawn runs on (/var/lib/machines/NAME; the
//                                        homePath of the container's group)
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/error.hpp"
#include "aplspawn/sys/mount.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace aplspawn::fleet {

namespace fs = std::filesystem;

struct ContainerDirs {
    fs::path upper, work, merged;  // canonical where they exist
};

// merged = home_path/NAME (its group's cntCommon.homePath).
ContainerDirs container_dirs(const config::Config& c, const std::string& name,
                             const fs::path& home_path);
ContainerDirs container_dirs(const config::Config& c, const config::Container& ct);

// Refuses, before anything starts, an upper directory overlayfs cannot use: on overlayfs itself
// (inside Docker), without d_type, without trusted.* xattrs, or with the work directory on another
// filesystem. The message says why and names the key to change (path.imageUpperPath /
// path.imageWorkPath). Creates both base directories when `create` (else probes the nearest
// existing parent).
void check_upper_filesystem(const config::Config& c, bool create);

// A read-only union of directories, topmost first: "lowerdir=A:B:C" (escaped as below). Mounted
// read-only (MS_RDONLY) it needs no upper or work directory.
std::string overlay_union_data(const std::vector<fs::path>& layers);

// "lowerdir=L,upperdir=U,workdir=W,index=off", with ',', ':' and '\' in paths escaped.
std::string overlay_mount_data(const fs::path& lower, const ContainerDirs& dirs);

enum class OverlayState { absent, correct, other };
// What is mounted at dirs.merged: nothing, the overlay of exactly these layers, or something else.
OverlayState overlay_state(const std::vector<sys::MountInfo>& mounts, const fs::path& lower,
                           const ContainerDirs& dirs);

// Mounts the overlay unless exactly it is mounted already; anything else mounted there (a stale
// overlay of an older lower layer) is unmounted first. The container must not be running.
Change ensure_overlay(const fs::path& lower, const ContainerDirs& dirs);

// Unmounts whatever is mounted at dirs.merged (every stacked mount). Unchanged when nothing was.
Change remove_overlay(const ContainerDirs& dirs);

// Whether anything is mounted at dirs.merged.
bool merged_mounted(const std::vector<sys::MountInfo>& mounts, const ContainerDirs& dirs);

}  // namespace aplspawn::fleet
