// Where an OS image keeps its root filesystem, found with libblkid:
//   1. a GPT partition whose type is the Discoverable Partitions Specification root type of the
//      host's architecture (x86-64: 4f68bce3-e8cd-4db1-96e7-fbcaf984b709), without the no-auto
//      flag; else
//   2. a Linux-filesystem partition named "root" or holding a filesystem labelled "root"; else
//   3. the single Linux-filesystem partition;
// or, for an image without a partition table, the filesystem itself ("bare"). The filesystem must
// be squashfs, erofs, ext4 (ext2/ext3 mount as ext4), btrfs or xfs. Anything else is an Error
// that names the image and says what was found. The result is a byte range to attach to a loop
// device: this machine (and many) creates no partition nodes for loop devices.
#pragma once

#include <cstdint>
#include <expected>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace aplspawn::image {

namespace fs = std::filesystem;

struct RootPartition {
    std::uint64_t offset = 0;  // bytes from the start of the image
    std::uint64_t size = 0;    // bytes
    std::string fstype;        // as libblkid names it: "squashfs", "ext4", ...
    int number = 0;            // partition number; 0 for a bare filesystem
    std::string how;           // why this one: "GPT partition 1, type root-x86-64"

    // The filesystem type to pass to mount(2) (ext2/ext3 are mounted by the ext4 driver).
    std::string mount_type() const;
    // Extra mount data for a read-only mount of a device that must never be written
    // (ext4: noload, xfs: norecovery: no journal replay on a read-only device).
    std::string mount_data() const;
};

// Finds the root filesystem of the image file. Throws Error "find root partition in IMAGE: ...".
RootPartition find_root_partition(const fs::path& image);
// Same, on an open file (fd is only read; `what` names it in messages).
RootPartition find_root_partition(int fd, const std::string& what);

// --- the pure part, for tests ---

// One entry of the partition table as libblkid reports it.
struct PartitionEntry {
    int number = 0;
    std::string type;     // GPT type UUID in lower case, or "0x83" style for MBR
    std::string name;     // GPT partition name
    std::string label;    // filesystem label, if any
    std::string fstype;   // filesystem found inside, if any
    std::uint64_t offset = 0, size = 0;
    std::uint64_t flags = 0;  // GPT attribute bits
};

// The DPS root partition type of this build's architecture ("" when it has none).
std::string_view host_root_type();
// A short name for a type UUID in messages ("root-x86-64", "linux-generic", "esp", "swap").
std::string type_name(std::string_view type);
inline constexpr std::string_view kLinuxFilesystemType = "0fc63daf-8483-4772-8e79-3d69d8477de4";

// Applies rules 1-3 to a partition table; the chosen index, or why none fits.
std::expected<std::size_t, std::string> choose_root(const std::vector<PartitionEntry>& parts,
                                                    std::string_view root_type);
// Whether aplspawn mounts this filesystem type as a lower layer.
bool supported_fstype(std::string_view fstype);

}  // namespace aplspawn::image
