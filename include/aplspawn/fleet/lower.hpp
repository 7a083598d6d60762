// The fleet's lower layers: each image's root filesystem, attached read-only to a free loop device
// (by offset and size) and mounted read-only at path.imageLowerLayer/IMAGE_NAME, once for every
// container of that image (a fleet of several groups may have several). The image is the store's
// current version (path.localStore/FILE_NAME, a symlink resolved once); which file (path, device,
// inode) a mounted lower layer came from is read back from the loop device, so a newer version
// downloaded while containers run on it does not disturb them: it is used once they have stopped.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/error.hpp"
#include "aplspawn/fleet/state.hpp"
#include "aplspawn/image/disk.hpp"
#include "aplspawn/sys/fd.hpp"
#include "aplspawn/sys/loop.hpp"

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace aplspawn::fleet {

namespace fs = std::filesystem;

// path.imageLowerLayer/NAME (canonical), NAME being an image's name (config::Image::name).
fs::path lower_dir(const config::Config& c, std::string_view image_name);
// path.localStore/FILE_NAME: the store's current version of an image.
fs::path image_path(const config::Config& c, const config::Image& im);

// A snapshot image (image.snapshot) the store does not have: Error::usage naming the config key
// of a group that uses it.
Error missing_snapshot(const config::Config& c, const config::Image& im);

// The image file the store's path resolves to now; nullopt when there is none.
struct ImageFile {
    fs::path path;  // symlinks resolved
    dev_t dev = 0;
    ino_t ino = 0;
    std::uint64_t size = 0;
};
std::optional<ImageFile> current_image(const config::Config& c, const config::Image& im);

// What is mounted at a lower directory now.
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
LowerStatus inspect_lower(const config::Config& c, std::string_view image_name);

// One decision about an image's lower layer, read from the host: what spawn's --dry-run prints
// and what apply_lower does.
struct LowerPlan {
    enum class Action {
        keep,         // it shows the current image (or an older one containers run on)
        mount,        // nothing mounted: attach and mount the current image
        replace,      // an older version nobody runs on: unmount it, then mount the current one
    };
    Action action = Action::keep;
    config::Image image;
    LowerStatus now;
    // The current image, open, and its root partition (absent when keep needs no file: the
    // image is gone from the store but containers run on the mounted version).
    std::optional<ImageFile> file;
    sys::UniqueFd fd;
    image::RootPartition partition;
    std::vector<std::string> notes;  // INFO lines (an older version kept in use, ...)

    // The PLAN line ("" for keep).
    std::string describe() const;
};

// Reads only. `in_use`: containers run on the mounted lower layer (they keep their version).
// Throws when the image is not in the store (and nothing usable is mounted) or something else is
// mounted at the lower directory.
LowerPlan plan_lower(const config::Config& c, const config::Image& im, bool in_use);

struct LowerResult {
    Change change = Change::unchanged;
    std::string loop_device;           // "/dev/loop3"
    fs::path mount_point;
    image::RootPartition partition;    // of the image the lower layer shows
    std::vector<std::string> notes;
};

// Carries the plan out and writes the state record state/lower/IMAGE_NAME.json (what was
// attached: file, inode, loop device, range).
LowerResult apply_lower(const StateDir& state, LowerPlan plan);

// plan_lower then apply_lower.
LowerResult ensure_lower(const config::Config& c, const config::Image& im, const StateDir& state,
                         bool in_use);

// Unmounts an image's lower layer (its autoclear loop device is released with it) and removes
// the state record. Only an image mount is taken down; unchanged when nothing was mounted.
Change release_lower(const config::Config& c, std::string_view image_name, const StateDir& state);

// state/lower/IMAGE_NAME.json
fs::path lower_record_path(const StateDir& state, std::string_view image_name);
// The images with a lower layer record (mounted by an earlier spawn of this fleet), sorted.
std::vector<std::string> recorded_lowers(const StateDir& state);

}  // namespace aplspawn::fleet
