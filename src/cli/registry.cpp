#include "cli/operation.hpp"

#include <array>

namespace aplspawn::cli {
namespace {

// In the original's order of use.
constexpr std::array kOperations = {
    Operation{"netup", "create the fleet's bridge, enable forwarding, add NAT (nftables)",
              run_netup, true, true, false},
    Operation{"netdown", "remove exactly what netup created", run_netdown, true, true, false},
    Operation{"getimage", "download the OS image into the local store, verified and resumable",
              run_getimage, true, true, false},
    Operation{"spawn", "start every container of the fleet and wait until each answers SSH",
              run_spawn, true, true, false},
    Operation{"stop", "stop the fleet's containers, keeping their data", run_stop, true, true,
              false},
    Operation{"status", "check network, mounts and every container (exit 1 if any check fails)",
              run_status, true, false, true},
    Operation{"pids", "print the leader PID of each running container", run_pids, false, false,
              true},
    Operation{"names", "print the name of each container", run_names, false, false, true},
    Operation{"inventory", "print (and write) the Ansible inventory of the fleet", run_inventory, false,
              false, true},
    Operation{"cleanup", "remove the fleet's containers' data and state (after stop)", run_cleanup,
              true, true, false},
};

}  // namespace

std::span<const Operation> operations() { return kOperations; }

const Operation* find_operation(std::string_view name) {
    for (const auto& op : kOperations)
        if (op.name == name) return &op;
    return nullptr;
}

}  // namespace aplspawn::cli
