// stop: stop the fleet's containers (or the targeted ones), keeping their data (docs/spawn.md).
// Graceful stop in parallel, bounded by --timeout (default 30 s) before the kill; merged
// directories unmounted; each image's lower layer unmounted (its loop device released) once no
// container runs on it.
#include "aplspawn/fleet/host_limits.hpp"
#include "aplspawn/fleet/launch.hpp"
#include "aplspawn/fleet/lower.hpp"
#include "aplspawn/fleet/observe.hpp"
#include "aplspawn/fleet/parallel.hpp"
#include "aplspawn/fleet/stop.hpp"
#include "aplspawn/fleet/targets.hpp"
#include "aplspawn/output.hpp"
#include "aplspawn/sys/lock.hpp"
#include "cli/operation.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>

namespace aplspawn::cli {
namespace {

constexpr int kDefaultStopTimeout = 30;

// The images whose lower layer may be mounted: the config's and any a record or an earlier spawn
// of this fleet names.
std::vector<std::string> lower_candidates(const config::Config& c, const fleet::StateDir& state,
                                          const fleet::FleetView& view) {
    std::set<std::string> names;
    for (const auto* im : c.images()) names.insert(im->name);
    for (const auto& n : fleet::recorded_lowers(state)) names.insert(n);
    for (const auto& v : view.containers)
        if (v.record && !v.record->image.empty()) names.insert(v.record->image);
    return {names.begin(), names.end()};
}

}  // namespace

Exit run_stop(const Context& ctx) {
    const config::Config& c = ctx.config;
    const bool dry = ctx.options.dry_run;
    const std::chrono::seconds grace(ctx.options.timeout_sec.value_or(kDefaultStopTimeout));
    fleet::StateDir state(c);
    const fleet::Selection selection = fleet::select_targets(c, state, ctx.options.targets);

    std::optional<sys::DirLock> lock;
    if (!dry) lock = sys::DirLock::acquire(state.dir(), "stop");

    const fleet::FleetView view = fleet::observe(c, state);
    const fleet::FleetView chosen = selection.of(view);
    const auto& containers = chosen.containers;
    std::vector<std::string> failed;
    // Every container at once, however many: a worker mostly waits (for its container to halt,
    // for the kernel), and a cap leaves the containers past it running until a slot frees (two
    // halts in a row beyond it). A worker holds a few descriptors (pidfd, netlink socket): the
    // open files limit is raised to spawn's measure for as many at once (fleet/host_limits.hpp).
    if (!dry) fleet::raise_open_files(fleet::open_files_needed(static_cast<long>(containers.size())));
    fleet::run_ordered<fleet::Outcome>(
        containers.size(), containers.size(),
        [&](std::size_t i) {
            return dry ? fleet::plan_stop(containers[i])
                       : fleet::stop_container(state, containers[i], grace);
        },
        [&](std::size_t, fleet::Outcome& o) {
            out::separator();
            out::print(o.lines);
            if (!o.ok) failed.push_back(o.name);
        },
        [&](std::size_t i, const Error& e) { return fleet::failed_outcome(containers[i].name, e); });

    if (!dry) fleet::remove_stale_cgroups();

    // A lower layer goes when nothing runs on it any more: the containers not stopped here keep
    // theirs (a failed stop keeps them all).
    const fleet::FleetView after = dry ? view : fleet::observe(c, state);
    for (const auto& name : lower_candidates(c, state, view)) {
        fleet::LowerStatus lower = fleet::inspect_lower(c, name);
        bool still_used = dry ? std::any_of(view.containers.begin(), view.containers.end(),
                                            [&](const auto& v) {
                                                return v.running && v.record->image == name &&
                                                       !selection.contains(v.name);
                                            })
                              : after.any_running_on(name);
        if (!lower.is_image_mount() && !std::filesystem::exists(fleet::lower_record_path(state, name)) &&
            !selection.all)
            continue;
        std::string step = fmt::format("Umounting lower overlayFS layer {}", lower.mount_point.string());
        if (lower.is_image_mount()) step += fmt::format(" (loop {} released)", lower.loop->device);
        if (still_used || !failed.empty()) {
            if (lower.is_image_mount())
                out::info(fmt::format("{} kept: {}", lower.mount_point.string(),
                                      failed.empty() ? "containers still run on it"
                                                     : "containers failed to stop"));
            continue;
        }
        if (dry) {
            if (lower.is_image_mount()) out::plan(step);
            continue;
        }
        out::separator();
        Change ch = fleet::release_lower(c, name, state);
        out::ok(step + (ch == Change::changed ? "" : std::string(out::already_so)));
    }
    if (!failed.empty()) {
        out::fail(fmt::format("{} of {} containers did not stop: {}", failed.size(),
                              containers.size(), fmt::join(failed, ", ")));
        return Exit::failed;
    }
    return Exit::ok;
}

}  // namespace aplspawn::cli
