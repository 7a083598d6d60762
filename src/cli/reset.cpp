// reset [TARGETS]: every (targeted) container back to its image's state, running again and
// answering SSH, with the same name, address, host keys and machine-id (docs/snapshots.md): stop,
// empty its data but those, then spawn.
#include "aplspawn/fleet/lower.hpp"
#include "aplspawn/fleet/observe.hpp"
#include "aplspawn/fleet/parallel.hpp"
#include "aplspawn/fleet/reset.hpp"
#include "aplspawn/fleet/targets.hpp"
#include "aplspawn/output.hpp"
#include "aplspawn/sys/lock.hpp"
#include "cli/operation.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>

namespace aplspawn::cli {

Exit run_reset(const Context& ctx) {
    const config::Config& c = ctx.config;
    const bool dry = ctx.options.dry_run;
    fleet::StateDir state(c);
    const fleet::Selection selection = fleet::select_targets(c, state, ctx.options.targets);
    const auto selected = selection.of(c);
    std::vector<std::string> names;
    for (const auto* ct : selected) names.push_back(ct->name);
    if (dry) {
        for (const auto& n : names)
            out::plan(fmt::format("Reset {}: stop it, empty its data (host keys and machine-id "
                                  "kept), spawn it",
                                  n));
        return Exit::ok;
    }
    {
        sys::DirLock lock = sys::DirLock::acquire(state.dir(), "reset");
        const fleet::FleetView view = fleet::observe(c, state);
        // Each image's lower layer: the new upper directories take its directories' attributes.
        std::map<std::string, std::filesystem::path> lowers;
        for (const auto* ct : selected)
            if (!lowers.contains(ct->image().name))
                lowers[ct->image().name] = with_context("Mounting the image as lower overlayFS layer", [&] {
                    return fleet::ensure_lower(c, ct->image(), state,
                                               view.any_running_on(ct->image().name));
                }).mount_point;
        std::vector<const fleet::ContainerView*> chosen;
        for (const auto& v : view.containers)
            if (v.config && selection.contains(v.name)) chosen.push_back(&v);
        std::vector<std::string> failed;
        fleet::run_ordered<fleet::Outcome>(
            chosen.size(), 64,
            [&](std::size_t i) {
                const auto& v = *chosen[i];
                return fleet::reset_data(state, v, lowers.at(v.config->image().name),
                                         std::chrono::seconds(ctx.options.timeout_sec.value_or(30)));
            },
            [&](std::size_t, fleet::Outcome& o) {
                out::separator();
                out::print(o.lines);
                if (!o.ok) failed.push_back(o.name);
            });
        if (!failed.empty()) {
            out::fail(fmt::format("{} of {} containers could not be reset: {}", failed.size(),
                                  chosen.size(), fmt::join(failed, ", ")));
            return Exit::failed;
        }
    }
    Options again = ctx.options;
    again.targets = names;
    again.timeout_sec.reset();
    return run_spawn(Context{c, again});
}

}  // namespace aplspawn::cli
