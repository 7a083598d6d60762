// `aplspawn list`: the fleet at a glance, one row per container (the config's, then containers
// only recorded), aligned like `machinectl list`:
//   NAME   GROUP  ADDRESS      IMAGE                  STATE    PID    UPTIME
//   web10  web    10.10.12.10  debian-bookworm-latest running  4242   3min 12s
// With a networks section, a last column NETWORKS lists each container's other addresses
// (backend=10.20.0.30,storage=10.50.1.0); --json has "networks": {NAME: ADDRESS} for every row.
// States: running (spawn saw it answer SSH), starting (it runs, a spawn is bringing it up),
// failed (it runs but never answered SSH, or its systemd-nspawn died without a stop), stopped.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/fleet/observe.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace aplspawn::health {

struct OverviewRow {
    std::string name, group, address, image;
    std::string state;                    // running | starting | failed | stopped
    std::optional<pid_t> pid;             // the container's PID 1 as the host sees it
    std::optional<std::uint64_t> uptime;  // seconds since its PID 1 started
    // Its addresses on the networks besides the fleet's bridge (the config's), in order.
    std::vector<std::pair<std::string, std::string>> networks;
};

// `spawn_running`: a spawn holds the fleet's lock (its containers that are not ready yet are
// starting, not failed).
std::vector<OverviewRow> overview(const config::Config& c, const fleet::FleetView& view,
                                  bool spawn_running);

// The aligned table with its header, then "N containers listed (R running, S stopped)."
std::string overview_table(const std::vector<OverviewRow>& rows);
nlohmann::ordered_json overview_json(const std::vector<OverviewRow>& rows);

// "45s", "3min 12s", "2h 03min", "4d 2h"
std::string format_uptime(std::uint64_t seconds);

}  // namespace aplspawn::health
