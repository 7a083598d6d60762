#include "cli/operation.hpp"

#include <array>

namespace aplspawn::cli {
namespace {

// In the original's order of use.
constexpr std::array kOperations = {
    Operation{"netup", "create the fleet's bridge, enable forwarding, add NAT (nftables)",
              run_netup, true, true, false, false},
    Operation{"netdown", "remove exactly what netup created", run_netdown, true, true, false, false},
    Operation{"getimage", "download the fleet's OS images into the local store, verified and resumable",
              run_getimage, true, true, false, true},
    Operation{"spawn", "start the fleet's containers and wait until each answers SSH", run_spawn,
              true, true, false, true},
    Operation{"stop", "stop the fleet's containers, keeping their data", run_stop, true, true,
              false, true},
    Operation{"status", "check network, mounts and every container (exit 1 if any check fails)",
              run_status, true, false, true, true},
    Operation{"list", "show the fleet at a glance: one line per container", run_list, false, false,
              true, true},
    Operation{"pids", "print the leader PID of each running container", run_pids, false, false,
              true, true},
    Operation{"names", "print the name of each container", run_names, false, false, true, true, false},
    Operation{"inventory", "print (and write) the Ansible inventory of the fleet", run_inventory, false,
              false, true, false, false},
    Operation{"cleanup", "remove the fleet's containers' data and state (after stop)", run_cleanup,
              true, true, false, true},
    Operation{"snapshot", "make an image of the store from a container: snapshot CONTAINER NAME",
              run_snapshot, true, true, false, true},
    Operation{"reset", "put containers back to their image's state, keeping their identity",
              run_reset, true, true, false, true},
    Operation{"images", "list the local store's images (--remove NAME takes one out)", run_images,
              false, true, true, false, false},
    Operation{"enable", "on a systemd host: bring this fleet up at every boot (netup, spawn)",
              run_enable, true, true, false, false},
    Operation{"disable", "remove what enable installed (the fleet keeps running)", run_disable,
              true, true, false, false},
    Operation{"known-hosts", "print the SSH host keys of this host's containers (known_hosts lines)",
              run_known_hosts, false, false, false, true},
};

}  // namespace

std::span<const Operation> operations() { return kOperations; }

const Operation* find_operation(std::string_view name) {
    for (const auto& op : kOperations)
        if (op.name == name) return &op;
    return nullptr;
}

}  // namespace aplspawn::cli
