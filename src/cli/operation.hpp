// The dispatcher's contract: what an operation gets (the parsed config and the command line's
// options) and what it returns (an exit code). One file per operation in src/cli/ implements
// `Exit run_NAME(const Context&)`; registry.cpp lists them. Operations sequence steps of the
// modules (net, image, fleet, health, inventory) and never make syscalls themselves.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/error.hpp"

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace aplspawn::cli {

struct Options {
    std::optional<std::filesystem::path> config_file;  // -c
    bool json = false;                                   // --json
    bool dry_run = false;                                // --dry-run
    bool force = false;                                  // --force (netdown)
    bool images = false;                                 // --images (cleanup)
    std::string format = "ini";                          // --format (inventory)
    bool list = false;                                   // --list (inventory, dynamic protocol)
    std::string host;                                    // --host NAME: which host of the file this is
    std::string hostvars;                                // --hostvars NAME (inventory, dynamic --host)
    bool direct = false;                                 // --direct (inventory: no ProxyJump)
    std::string known_hosts;                             // --known-hosts FILE (inventory)
    std::optional<int> timeout_sec;                      // --timeout (spawn, stop)
    bool summary = false;                                // --summary (status)
    std::string remove;                                  // --remove NAME (images)
    std::vector<std::string> targets;                    // groups or containers (positional)
};

struct Context {
    const config::Config& config;
    const Options& options;
};

using RunFn = Exit (*)(const Context&);

struct Operation {
    std::string_view name;
    std::string_view summary;  // one line for --help
    RunFn run;
    bool needs_root;
    bool changes_host;  // accepts --dry-run
    bool prints_data;   // accepts --json
    bool takes_targets; // acts on part of the fleet: group or container names after it
    // Acts on this machine's part of a fleet with hosts (its groups' containers, its bridges):
    // needs to know which host it is. names and inventory describe the whole fleet anywhere.
    bool needs_host = true;
};

std::span<const Operation> operations();
const Operation* find_operation(std::string_view name);

// Operations, one file each: src/cli/NAME.cpp.
Exit run_netup(const Context&);
Exit run_netdown(const Context&);
Exit run_getimage(const Context&);
Exit run_spawn(const Context&);
Exit run_stop(const Context&);
Exit run_status(const Context&);
Exit run_pids(const Context&);
Exit run_names(const Context&);
Exit run_inventory(const Context&);
Exit run_cleanup(const Context&);
Exit run_list(const Context&);
Exit run_snapshot(const Context&);
Exit run_reset(const Context&);
Exit run_images(const Context&);
Exit run_enable(const Context&);
Exit run_disable(const Context&);
Exit run_known_hosts(const Context&);

// Which host of a fleet with hosts this machine is (--host NAME, else by its addresses): sets
// config.local. Refused (exit 2) for an operation that needs a host when none matches.
void place_this_machine(config::Config& config, const Options& options, const Operation& op);

}  // namespace aplspawn::cli
