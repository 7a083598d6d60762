// stop: stop the fleet's containers, keeping their data (docs/spawn.md). Graceful stop in
// parallel, bounded by --timeout (default 30 s) before the kill; merged directories unmounted;
// the lower layer unmounted (its loop device released) once no container runs on it.
#include "aplspawn/fleet/launch.hpp"
#include "aplspawn/fleet/lower.hpp"
#include "aplspawn/fleet/observe.hpp"
#include "aplspawn/fleet/parallel.hpp"
#include "aplspawn/fleet/stop.hpp"
#include "aplspawn/output.hpp"
#include "aplspawn/sys/lock.hpp"
#include "cli/operation.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <optional>

namespace aplspawn::cli {
namespace {

constexpr int kDefaultStopTimeout = 30;
constexpr std::size_t kMaxParallel = 64;

}  // namespace

Exit run_stop(const Context& ctx) {
    const config::Config& c = ctx.config;
    const bool dry = ctx.options.dry_run;
    const std::chrono::seconds grace(ctx.options.timeout_sec.value_or(kDefaultStopTimeout));
    fleet::StateDir state(c);

    std::optional<sys::DirLock> lock;
    if (!dry) lock = sys::DirLock::acquire(state.dir(), "stop");

    const fleet::FleetView view = fleet::observe(c, state);
    const auto& containers = view.containers;
    std::vector<std::string> failed;
    fleet::run_ordered<fleet::Outcome>(
        containers.size(), kMaxParallel,
        [&](std::size_t i) {
            return dry ? fleet::plan_stop(containers[i])
                       : fleet::stop_container(c, state, containers[i], grace);
        },
        [&](std::size_t, fleet::Outcome& o) {
            out::separator();
            out::print(o.lines);
            if (!o.ok) failed.push_back(o.name);
        });

    if (!dry)
        fleet::remove_stale_cgroups();

    // The lower layer goes when nothing runs on it any more.
    fleet::LowerStatus lower = fleet::inspect_lower(c);
    std::string step = fmt::format("Umounting lower overlayFS layer {}", lower.mount_point.string());
    if (lower.is_image_mount()) step += fmt::format(" (loop {} released)", lower.loop->device);
    if (!failed.empty()) {
        out::info(fmt::format("{} kept: containers failed to stop", lower.mount_point.string()));
    } else if (dry) {
        if (lower.is_image_mount()) out::plan(step);
    } else {
        out::separator();
        Change ch = fleet::release_lower(c, state);
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
