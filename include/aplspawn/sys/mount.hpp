// Mounts: mount(2)/umount2(2) with errors that name the mount, a guard that unmounts when it
// leaves scope, and /proc/self/mountinfo read through libmount (util-linux) into plain values
// (plan, then apply: read what is mounted before acting). Knows nothing about containers.
#pragma once

#include "aplspawn/error.hpp"

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aplspawn::sys {

namespace fs = std::filesystem;

// One line of /proc/PID/mountinfo (proc(5)) as libmount parsed it: every field with the
// kernel's octal escapes (\040) decoded.
struct MountInfo {
    int id = 0;
    int parent_id = 0;
    unsigned major = 0, minor = 0;  // st_dev of the mounted filesystem
    std::string root;               // the mount's root within its filesystem ("/" mostly)
    std::string mount_point;        // absolute, in our mount namespace
    std::string mount_options;      // per-mount: "ro,nosuid,relatime"
    std::string fstype;             // "overlay", "squashfs", ...
    std::string source;             // "/dev/loop3", "overlay", ...
    std::string super_options;      // per-superblock: "rw,lowerdir=...,upperdir=..." (decoded:
                                    // a comma inside a value is a comma, see has_super_option)

    bool read_only() const;  // "ro" among mount_options
    // Whether `item` ("upperdir=/x/a,b", a flag such as "name=systemd", or a run of options
    // "lowerdir=L,upperdir=U") is among the super options as a whole: bounded by commas or the
    // ends. Decoded, a value holding a comma is only told apart from a shorter one by the option
    // after it: match a run of options where that matters.
    bool has_super_option(std::string_view item) const;
    // The value of `key=` up to the next comma (for messages: a value with a comma is cut).
    std::optional<std::string> super_option(std::string_view key) const;
};

// Parses mountinfo text (libmount). Lines that do not parse are skipped.
std::vector<MountInfo> parse_mountinfo(std::string_view text);
// Reads /proc/self/mountinfo (libmount).
std::vector<MountInfo> read_mountinfo();
// The same for another process's mount namespace (/proc/PID/mountinfo; mount points as that
// process sees them).
std::vector<MountInfo> read_mountinfo_of(pid_t pid);

// The topmost mount whose mount point is exactly `mount_point` (compared as given: pass a
// canonical path), if any. Stacked mounts: the last one listed is the visible one.
std::optional<MountInfo> find_mount(const std::vector<MountInfo>& mounts,
                                    const fs::path& mount_point);
// How many mounts are stacked at exactly mount_point.
int count_mounts(const std::vector<MountInfo>& mounts, const fs::path& mount_point);

// Absolute path with symlinks resolved as far as the path exists (weakly_canonical), for
// comparing with mountinfo.
fs::path canonical_for_mountinfo(const fs::path& p);

// mount(2). Throws Error "mount FSTYPE SOURCE on TARGET: strerror".
void mount(const std::string& source, const fs::path& target, const std::string& fstype,
           unsigned long flags, const std::string& data);

// umount2(2). Not mounted (EINVAL) or gone (ENOENT): Change::unchanged. EBUSY is retried for up
// to `busy_wait` (a mount namespace that just lost its last process is released a moment later);
// other errors throw "unmount TARGET: strerror".
Change unmount(const fs::path& target, int flags = 0,
               std::chrono::milliseconds busy_wait = std::chrono::milliseconds(2000));

// What a directory's filesystem offers an overlayfs upper (and work) layer: overlayfs needs
// d_type in directory entries and trusted.* extended attributes, and cannot use overlayfs itself
// (the root of a Docker container is one).
struct UpperLayerSupport {
    bool is_overlayfs = false;
    bool d_type = false;
    bool trusted_xattrs = false;
    std::string why_not;  // errno text of the probe that failed, for messages
    bool usable() const { return !is_overlayfs && d_type && trusted_xattrs; }
};
// Probes dir (which must exist and be writable) with a temporary directory it removes again.
UpperLayerSupport probe_upper_layer_support(const fs::path& dir);

// Unmounts `target` when it leaves scope, unless release()d: a step that fails half-way leaves
// nothing mounted.
class MountGuard {
public:
    MountGuard() = default;
    explicit MountGuard(fs::path target) : target_(std::move(target)) {}
    MountGuard(MountGuard&& o) noexcept : target_(std::exchange(o.target_, {})) {}
    MountGuard& operator=(MountGuard&& o) noexcept;
    MountGuard(const MountGuard&) = delete;
    MountGuard& operator=(const MountGuard&) = delete;
    ~MountGuard();

    const fs::path& target() const { return target_; }
    void release() { target_.clear(); }

private:
    void reset() noexcept;
    fs::path target_;
};

}  // namespace aplspawn::sys
