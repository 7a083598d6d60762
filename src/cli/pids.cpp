// pids: the leader PID (the container's PID 1 as the host sees it) of each running container,
// one per line on stdout, in name order, as the original printed them. A container that is not
// running prints nothing on stdout and one FAIL line on stderr, and the exit status is 1.
// --json: [{"name", "ip", "running", "pid"}] for every container (pid null when not running).
#include "aplspawn/health/leaders.hpp"
#include "aplspawn/output.hpp"
#include "cli/operation.hpp"

#include <nlohmann/json.hpp>

#include <iostream>

namespace aplspawn::cli {

Exit run_pids(const Context& ctx) {
    auto all = health::leaders(ctx.config);
    bool every = true;
    auto arr = nlohmann::ordered_json::array();
    for (const auto& c : all) {
        const auto& p = c.leader.process;
        if (!p) {
            every = false;
            out::fail(c.leader.problem);
        } else if (!ctx.options.json) {
            std::cout << p->pid << '\n';
        }
        arr.push_back({{"name", c.name},
                       {"ip", c.ip},
                       {"running", p.has_value()},
                       {"pid", p ? nlohmann::ordered_json(p->pid) : nlohmann::ordered_json(nullptr)}});
    }
    if (ctx.options.json) std::cout << arr.dump(2) << '\n';
    std::cout.flush();
    if (!std::cout) throw Error("pids: write to stdout failed");
    return every ? Exit::ok : Exit::failed;
}

}  // namespace aplspawn::cli
