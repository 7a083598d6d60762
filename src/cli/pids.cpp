// pids: the leader PID (the container's PID 1 as the host sees it) of each running container,
// one per line on stdout, in name order, as the original printed them. A container that is not
// running prints nothing on stdout and one FAIL line on stderr, and the exit status is 1.
// --json: [{"name", "group", "ip", "running", "pid"}] for every container (pid null when not running).
#include "aplspawn/fleet/targets.hpp"
#include "aplspawn/health/leaders.hpp"
#include "aplspawn/output.hpp"
#include "cli/operation.hpp"

#include <nlohmann/json.hpp>

#include <iostream>

namespace aplspawn::cli {

Exit run_pids(const Context& ctx) {
    const config::Config& c = ctx.config;
    auto all = health::leaders(c, fleet::select_targets(c, fleet::StateDir(c), ctx.options.targets).of(c));
    bool every = true;
    auto arr = nlohmann::ordered_json::array();
    for (const auto& l : all) {
        const auto& p = l.leader.process;
        if (!p) {
            every = false;
            out::fail(l.leader.problem);
        } else if (!ctx.options.json) {
            std::cout << p->pid << '\n';
        }
        arr.push_back({{"name", l.name},
                       {"group", l.group},
                       {"ip", l.ip},
                       {"running", p.has_value()},
                       {"pid", p ? nlohmann::ordered_json(p->pid) : nlohmann::ordered_json(nullptr)}});
    }
    if (ctx.options.json) std::cout << arr.dump(2) << '\n';
    std::cout.flush();
    if (!std::cout) throw Error("pids: write to stdout failed");
    return every ? Exit::ok : Exit::failed;
}

}  // namespace aplspawn::cli
