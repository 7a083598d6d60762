// The fleet's lower layer: the image's root filesystem, attached read-only to a free loop device
// (by offset and size) and mounted read-only at path.imageLowerLayer/IMAGE_NAME, once for the
// whole fleet. The image is the store's current version (path.localStore/FILE_NAME, a symlink
// resolved once); which file (path, device, inode) a mounted lower layer came from is read back
// from the loop device, so a newer version downloaded while the fleet runs does not disturb it:
// it is used once the fleet has stopped.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/error.hpp"
#include "aplspawn/fleet/state.hpp"
#include "aplspawn/image/disk.hpp"
#include "aplspawn/sys/loop.hpp"

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace aplspawn::fleet {

namespace fs = std::filesystem;

// path.imageLowerLayer/IMAGE_NAME (canonical).
fs::path lower_dir(const config::Config& c);
// path.localStore/FILE_NAME: the store's current version of the configured image.
fs::path image_path(const config::Config& c);

// The image file the store's path resolves to now; nullopt when there is none.
struct ImageFile {
    fs::path path;  // symlinks resolved
    dev_t dev = 0;
    ino_t ino = 0;
    std::uint64_t size = 0;
};
std::optional<ImageFile> current_image(const config::Config& c);

// What is mounted at the lower directory now.
struct LowerStatus {
    fs::path mount_point;
    bool mounted = false;
    std::string source, fstype;
    bool read_only = false;
    std::optional<sys::LoopStatus> loop;  // when the source is a bound loop device
    // A read-only mount of a loop device: aplspawn's lower layer (of some image version).
    bool is_image_mount() const { return mounted && read_only && loop.has_value(); }
    // It shows exactly this file's root partition.
    bool shows(const ImageFile& f, const image::RootPartition& p) const;
};
LowerStatus inspect_lower(const config::Config& c);

struct LowerResult {
    Change change = Change::unchanged;
    std::string loop_device;           // "/dev/loop3"
    fs::path mount_point;
    image::RootPartition partition;    // of the image the lower layer shows
    std::vector<std::string> notes;    // INFO lines (an older version kept in use, ...)
};

// Makes sure the lower layer shows the current image: reuses a correct mount; replaces one of an
// older version unless `in_use` (containers run on it: they keep it, with a note); mounts it when
// nothing is there. Something else mounted at the lower directory is an Error. Writes the state
// record state/lower/IMAGE_NAME.json (what was attached: file, inode, loop device, range).
LowerResult ensure_lower(const config::Config& c, const StateDir& state, bool in_use);

// What ensure_lower would do, in words, for --dry-run ("" when it would change nothing).
std::string plan_lower(const config::Config& c, bool in_use);

// Unmounts the lower layer (its autoclear loop device is released with it) and removes the state
// record. Only an image mount is taken down; unchanged when nothing was mounted.
Change release_lower(const config::Config& c, const StateDir& state);

// state/lower/IMAGE_NAME.json
fs::path lower_record_path(const config::Config& c, const StateDir& state);

}  // namespace aplspawn::fleet
