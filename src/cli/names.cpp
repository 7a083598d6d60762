// names: one container name per line on stdout (--json: [{"name": ..., "ip": ...}]).
// Needs no root, no image and no running fleet.
#include "cli/operation.hpp"

#include <nlohmann/json.hpp>

#include <iostream>

namespace aplspawn::cli {

Exit run_names(const Context& ctx) {
    if (ctx.options.json) {
        auto arr = nlohmann::ordered_json::array();
        for (const auto& c : ctx.config.fleet) arr.push_back({{"name", c.name}, {"ip", c.ip.str()}});
        std::cout << arr.dump(2) << '\n';
    } else {
        for (const auto& c : ctx.config.fleet) std::cout << c.name << '\n';
    }
    std::cout.flush();
    return std::cout ? Exit::ok : Exit::failed;
}

}  // namespace aplspawn::cli
