// The way back, part two (the original's "Removing content of working directories"): after stop,
// remove each container's upper, work and merged directories, the fleet's state (records, logs,
// known_hosts, lower-layer records; not netup's net.json nor the lock) and the empty lower
// directories; with --images also the image store (only when it lies under
// path.workingDirectory; the images the config's groups use stay unless forced). With targets, only the targeted containers' directories, records, logs
// and known_hosts entries go; the fleet's shared state and lower directories stay. Only entries named after the fleet's containers are removed from the
// shared directories (homePath is /var/lib/machines), each with sys::remove_tree_at: no symlink
// followed, no mount point crossed.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/fleet/lower.hpp"
#include "aplspawn/fleet/observe.hpp"
#include "aplspawn/fleet/state.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace aplspawn::fleet {

namespace fs = std::filesystem;

// Throws Error (one line naming them) while the containers to clean up run or are mounted, or,
// cleaning up the whole fleet, while a lower layer is still mounted (`lowers`: each image's).
void check_cleanup_allowed(const FleetView& view, const std::vector<LowerStatus>& lowers);

struct CleanupGroup {
    fs::path dir;                    // a configured directory
    std::vector<std::string> names;  // entries of it to remove (those that exist)
};

struct CleanupPlan {
    std::vector<CleanupGroup> groups;
    std::vector<std::string> refused;  // INFO lines: what is not removed, and why
    // --images with images kept: the store names removed, whose versions are then pruned
    // (image::Store::prune) and whose SHA256SUMS lines go.
    std::vector<std::string> pruned_images;
};

// `view`: the containers to clean up; `whole_fleet`: no targets were given.
CleanupPlan plan_cleanup(const config::Config& c, const StateDir& state, const FleetView& view,
                         bool whole_fleet, bool images, bool force = false);

// Removes a group's entries; Change::unchanged when none existed.
Change apply_cleanup(const CleanupGroup& group);

}  // namespace aplspawn::fleet
