// cleanup: after stop, remove the fleet's containers' data and state, as the original's
// "Removing content of working directories" (docs/spawn.md). --images: the image store too.
#include "aplspawn/fleet/cleanup.hpp"
#include "aplspawn/fleet/lower.hpp"
#include "aplspawn/fleet/observe.hpp"
#include "aplspawn/output.hpp"
#include "aplspawn/sys/lock.hpp"
#include "cli/operation.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <optional>

namespace aplspawn::cli {

Exit run_cleanup(const Context& ctx) {
    const config::Config& c = ctx.config;
    const bool dry = ctx.options.dry_run;
    fleet::StateDir state(c);

    std::optional<sys::DirLock> lock;
    if (!dry && std::filesystem::exists(state.dir())) lock = sys::DirLock::acquire(state.dir(), "cleanup");

    const fleet::FleetView view = fleet::observe(c, state);
    fleet::check_cleanup_allowed(view, fleet::inspect_lower(c));
    lock.reset();  // the lock file lives in the state directory, which stays (so does the lock)
    if (!dry) lock = sys::DirLock::acquire(state.dir(), "cleanup");

    const fleet::CleanupPlan plan = fleet::plan_cleanup(c, state, view, ctx.options.images);
    for (const auto& r : plan.refused) out::info(r);
    Change all = Change::unchanged;
    for (const auto& g : plan.groups) {
        if (dry) {
            for (const auto& n : g.names) out::plan(fmt::format("Remove {}", (g.dir / n).string()));
            continue;
        }
        for (const auto& n : g.names) out::debug(fmt::format("removing {}", (g.dir / n).string()));
        Change ch = with_context("cleanup", [&] { return fleet::apply_cleanup(g); });
        all |= ch;
        out::ok(fmt::format("{} was cleaned up{}", g.dir.string(),
                            ch == Change::changed ? "" : std::string(out::already_so)));
    }
    if (!dry)
        out::ok(fmt::format("Removing content of working directories{}",
                            all == Change::changed ? "" : std::string(out::already_so)));
    return Exit::ok;
}

}  // namespace aplspawn::cli
