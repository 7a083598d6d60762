// Snapshots: a container's whole root as it is now (its image and its own changes) made into an
// image of the local store, of the same kind as the default image (GPT, squashfs root), with its
// SHA-256 recorded and a SHA256SUMS line, so the store can serve as an image repo (image.repo) for
// another machine. A group uses it with `image: {snapshot: NAME}`.
//
// What makes a host unique is not carried into the image: a layer of whiteouts and neutral
// files is put on top of the container's layers for the copy: no /etc/machine-id content, SSH
// host keys, the fleet user's authorized_keys, hostname, aplspawn's /etc/hosts lines and
// provisioning record, systemd's random seed and credential secret, or the container's journal.
// A container made from the snapshot gets its own, as from any image.
//
// The work happens in STORE/.partial/snapshot-NAME (mounts and files); the image enters the store
// only complete (image::Store::install); a run killed on the way leaves that directory, which the
// next snapshot removes first.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/error.hpp"
#include "aplspawn/image/pack.hpp"
#include "aplspawn/image/store.hpp"
#include "aplspawn/ipv4.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace aplspawn::fleet {

namespace fs = std::filesystem;

struct SnapshotSpec {
    std::string name;        // the snapshot's name: NAME.img in the store
    std::string container;   // the container, which does not run while it is copied
    std::string group;
    Ipv4 ip;                 // its address (its /etc/hosts lines)
    std::string user;        // the fleet user whose authorized_keys stay behind
    fs::path upper;          // its upper directory
    fs::path lower;          // its image's mounted lower layer
    std::string base_image;  // that image's name
    std::uint64_t base_size = 0;  // that image file's size (for the room check)
};

struct SnapshotResult {
    image::PackedImage packed;
    image::Version version;
    std::vector<std::string> left_out;  // what the scrub layer hid or emptied, for -v
};

// Bytes the snapshot may take at most: the base image, the container's own changes, and a margin.
std::uint64_t snapshot_room(const SnapshotSpec& spec);

// Throws Error (ENOSPC, "no space in STORE ...") when the store has less room than snapshot_room.
void check_snapshot_room(const fs::path& store, const SnapshotSpec& spec);

// Makes the snapshot. Throws Error: too little room in the store (checked before anything is
// written: "no space in STORE: the snapshot needs about X, Y free"), mksquashfs or sfdisk failing.
SnapshotResult make_snapshot(const fs::path& store, const SnapshotSpec& spec);

// Removes what a snapshot run killed on the way left in the store (STORE/.partial/snapshot-*:
// mounts taken down, files removed). Unchanged when there is nothing.
Change remove_snapshot_leftovers(const fs::path& store);

}  // namespace aplspawn::fleet
