// list: the fleet at a glance, one line per container (or per targeted one) on stdout, aligned
// like `machinectl list`, with a count line; --json: an array of objects (docs/status.md). Reads
// only: no root needed to see what runs (a container's PID 1 needs root to be verified).
#include "aplspawn/fleet/observe.hpp"
#include "aplspawn/fleet/targets.hpp"
#include "aplspawn/health/overview.hpp"
#include "aplspawn/sys/lock.hpp"
#include "cli/operation.hpp"

#include <iostream>

namespace aplspawn::cli {

Exit run_list(const Context& ctx) {
    const config::Config& c = ctx.config;
    fleet::StateDir state(c);
    const auto selection = fleet::select_targets(c, state, ctx.options.targets);
    const fleet::FleetView view = selection.of(fleet::observe(c, state));
    auto holder = sys::DirLock::holder(state.dir());
    bool spawning = holder && holder->find(" spawn ") != std::string::npos;
    auto rows = health::overview(c, view, spawning);
    if (ctx.options.json)
        std::cout << health::overview_json(rows).dump(2) << '\n';
    else
        std::cout << health::overview_table(rows);
    std::cout.flush();
    if (!std::cout) throw Error("list: write to stdout failed");
    return Exit::ok;
}

}  // namespace aplspawn::cli
