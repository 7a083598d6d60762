// known-hosts: the SSH host keys of this host's containers as known_hosts lines ("IP,NAME TYPE KEY":
// by address for Ansible, by name for `ssh db30` from a container) on stdout, from the fleet's record that spawn wrote (state/known_hosts). A fleet over several hosts
// gathers every host's lines into one file on the controller (ansible/fleet.yml) and points the
// inventory at it (inventory --known-hosts FILE): strict host key checking across the fleet.
// Containers that never ran here have no keys yet and no lines.
#include "aplspawn/fleet/known_hosts.hpp"
#include "aplspawn/fleet/state.hpp"
#include "aplspawn/fleet/targets.hpp"
#include "cli/operation.hpp"

#include <iostream>

namespace aplspawn::cli {

Exit run_known_hosts(const Context& ctx) {
    const config::Config& c = ctx.config;
    fleet::StateDir state(c);
    const auto selected = fleet::select_targets(c, state, ctx.options.targets).of(c);
    fleet::KnownHostsFile file(state.known_hosts());
    for (const auto* ct : selected)
        for (const auto& key : file.keys(ct->ip.str()))
            std::cout << ct->ip.str() << ',' << ct->name << ' ' << key << '\n';
    std::cout.flush();
    return std::cout ? Exit::ok : Exit::failed;
}

}  // namespace aplspawn::cli
