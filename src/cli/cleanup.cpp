// cleanup: after stop, remove the fleet's containers' data and state, as the original's
// "Removing content of working directories" (docs/spawn.md); with targets, only those
// containers'. --images: the image store too.
#include "aplspawn/fleet/cleanup.hpp"
#include "aplspawn/fleet/snapshot.hpp"
#include "aplspawn/fleet/known_hosts.hpp"
#include "aplspawn/fleet/lower.hpp"
#include "aplspawn/fleet/observe.hpp"
#include "aplspawn/fleet/targets.hpp"
#include "aplspawn/image/store.hpp"
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
    const fleet::Selection selection = fleet::select_targets(c, state, ctx.options.targets);
    if (!selection.all && ctx.options.images)
        throw Error::usage("cleanup --images removes the whole image store: give no targets with it");

    std::optional<sys::DirLock> lock;
    if (!dry && std::filesystem::exists(state.dir())) lock.emplace(sys::DirLock::acquire(state.dir(), "cleanup"));

    const fleet::FleetView view = selection.of(fleet::observe(c, state));
    std::vector<fleet::LowerStatus> lowers;
    if (selection.all) {
        for (const auto* im : c.images()) lowers.push_back(fleet::inspect_lower(c, im->name));
        for (const auto& n : fleet::recorded_lowers(state)) lowers.push_back(fleet::inspect_lower(c, n));
    }
    fleet::check_cleanup_allowed(view, lowers);
    // The lock file lives in the state directory, which stays (so does the lock); taken now when
    // there was no state directory to lock before the checks.
    if (!dry && !lock) lock.emplace(sys::DirLock::acquire(state.dir(), "cleanup"));

    const fleet::CleanupPlan plan =
        fleet::plan_cleanup(c, state, view, selection.all, ctx.options.images, ctx.options.force);
    for (const auto& r : plan.refused) out::info(r);
    Change all = Change::unchanged;
    // What a snapshot killed on the way left in the store (its mounts) goes first.
    if (ctx.options.images && !dry)
        all |= with_context("cleanup", [&] { return fleet::remove_snapshot_leftovers(c.paths.local_store); });
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
    for (const auto& name : plan.pruned_images) {
        if (dry) continue;
        with_context("cleanup", [&] {
            image::set_sums_line(c.paths.local_store, name, "");
            image::Store(c.paths.local_store, name).prune();
        });
    }
    // The removed containers' host keys (a container made again gets new ones), and their
    // membership of the fleet.
    if (!selection.all) {
        std::vector<std::string> names;
        for (const auto& v : view.containers) names.push_back(v.name);
        if (!dry) with_context("cleanup", [&] { state.remove_members(names); });
        fleet::KnownHostsFile known_hosts(state.known_hosts());
        for (const auto& v : view.containers) {
            if (v.ip.empty()) continue;
            if (dry) {
                if (!known_hosts.keys(v.ip).empty())
                    out::plan(fmt::format("Remove {}'s host keys from {}", v.name,
                                          known_hosts.path().string()));
                continue;
            }
            if (with_context("cleanup", [&] { return known_hosts.remove(v.ip); })) all = Change::changed;
        }
    }
    if (!dry)
        out::ok(fmt::format("Removing content of working directories{}",
                            all == Change::changed ? "" : std::string(out::already_so)));
    return Exit::ok;
}

}  // namespace aplspawn::cli
