// names: one container name per line on stdout (--json: [{"name", "group", "ip"}, and "host" in a
// fleet with hosts]), the whole fleet (every host's) or the targeted groups and containers. Needs no root, no image and no running fleet.
#include "aplspawn/fleet/targets.hpp"
#include "cli/operation.hpp"

#include <nlohmann/json.hpp>

#include <iostream>

namespace aplspawn::cli {

Exit run_names(const Context& ctx) {
    const config::Config& c = ctx.config;
    const auto selected = fleet::select_targets(c, fleet::StateDir(c), ctx.options.targets, fleet::Scope::whole_fleet).of(c);
    if (ctx.options.json) {
        auto arr = nlohmann::ordered_json::array();
        for (const auto* ct : selected) {
            arr.push_back({{"name", ct->name}, {"group", ct->group->name}, {"ip", ct->ip.str()}});
            if (const config::Host* h = c.host_of(*ct->group)) arr.back()["host"] = h->name;
        }
        std::cout << arr.dump(2) << '\n';
    } else {
        for (const auto* ct : selected) std::cout << ct->name << '\n';
    }
    std::cout.flush();
    return std::cout ? Exit::ok : Exit::failed;
}

}  // namespace aplspawn::cli
