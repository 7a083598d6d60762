// A root directory packed into a disk image of the default image's kind: a GPT disk with one
// partition, 1 MiB aligned, of the Discoverable Partitions type root x86-64, named root-x86-64,
// holding a squashfs (zstd) of the directory. mksquashfs (squashfs-tools) writes the filesystem
// straight into the image file at 1 MiB; sfdisk (fdisk) writes the partition table around it.
// Nothing is left when it fails: the caller gives a scratch path and removes it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace aplspawn::image {

namespace fs = std::filesystem;

struct PackedImage {
    fs::path file;
    std::uint64_t size = 0;            // bytes of the whole image
    std::uint64_t filesystem_bytes = 0;  // of the squashfs
    std::string sha256;                // of the whole image
};

// Packs `root` (a directory or a read-only mount) into the image file `out` (created; an existing
// file is replaced). Throws Error naming the program when mksquashfs or sfdisk fails or is missing.
PackedImage pack_root(const fs::path& root, const fs::path& out);

}  // namespace aplspawn::image
