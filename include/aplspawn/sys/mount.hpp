// Mounts: mount(2)/umount2(2) with errors that name the mount, a guard that unmounts when it
// leaves scope, and /proc/self/mountinfo parsed into plain values (plan, then apply: read what
// is mounted before acting). Knows nothing about containers.
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

// One line of /proc/PID/mountinfo (proc(5)), octal escapes (\040) decoded.
struct MountInfo {
    int id = 0;
    int parent_id = 0;
    unsigned major = 0, minor = 0;  // st_dev of the mounted filesystem
    std::string root;               // the mount's root within its filesystem ("/" mostly)
    std::string mount_point;        // absolute, in our mount namespace
    std::string mount_options;      // per-mount: "ro,nosuid,relatime"
    std::string fstype;             // "overlay", "squashfs", ...
    std::string source;             // "/dev/loop3", "overlay", ...
    std::string super_options;      // per-superblock: "lowerdir=...,upperdir=..." (still escaped
                                    // as the filesystem printed them; see split_super_options)

    bool read_only() const;  // "ro" among mount_options
};

// Parses mountinfo text. Lines that do not parse are skipped.
std::vector<MountInfo> parse_mountinfo(std::string_view text);
// Reads /proc/self/mountinfo.
std::vector<MountInfo> read_mountinfo();

// Decodes mountinfo's octal escapes ("\040" -> ' ').
std::string unescape_octal(std::string_view s);

// Splits super options at unescaped commas into key/value pairs, decoding octal escapes in
// values (overlayfs prints its directories with seq_show_option: ',', '=', blanks and '\' as
// octal escapes).
std::vector<std::pair<std::string, std::string>> split_super_options(std::string_view options);

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
