// The fleet as it is on the host, read before acting (plan, then apply): for each container its
// record, whether its nspawn runs, systemd-nspawn processes for it that no record knows (an
// interrupted run started them), and whether its merged directory is mounted. Containers of the
// config come first, in fleet order, then containers that only have a record or are only members
// of the fleet (state/members: their data stays until cleanup) — a group whose amount shrank.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/fleet/overlay.hpp"
#include "aplspawn/fleet/processes.hpp"
#include "aplspawn/fleet/state.hpp"

#include <optional>
#include <string>
#include <vector>

namespace aplspawn::fleet {

struct ContainerView {
    std::string name;
    std::string ip;                 // the config's; the record's for one not in the config
    std::string group;              // likewise
    const config::Container* config = nullptr;  // nullptr: only recorded
    std::optional<ContainerRecord> record;
    bool running = false;           // the record's systemd-nspawn is alive
    std::vector<NspawnProcess> strays;  // nspawn for this machine and directory, not the record's
    ContainerDirs dirs;
    bool merged_mounted = false;
    // state/networks/NAME.json exists: its network namespace and veths may be on the host.
    bool network_recorded = false;

    bool ready() const { return running && record && record->ready; }
    // "boot" or "script": the config's start mode, else the record's (else boot).
    std::string mode() const;
    // Anything of it still on the host: processes, a mount, its network.
    bool busy() const { return running || !strays.empty() || merged_mounted || network_recorded; }
};

struct FleetView {
    std::vector<ContainerView> containers;
    bool any_running() const;        // some recorded nspawn alive
    // some recorded nspawn alive whose container runs on this image's lower layer
    bool any_running_on(std::string_view image_name) const;
    bool any_busy() const;
    std::vector<std::string> busy_names() const;
    // Containers only recorded (no longer in the config) whose processes still run.
    std::vector<std::string> busy_leftovers() const;
};

FleetView observe(const config::Config& c, const StateDir& state);

}  // namespace aplspawn::fleet
