// Each container's leader (its PID 1 as the host sees it), from the fleet's state records and
// verified on the live system: the recorded systemd-nspawn still runs (same start time), and the
// leader is the recorded process (same pid and start time) and still nspawn's child that is PID 1
// in its own pid namespace. Used by `pids` and by status's leader check.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/fleet/processes.hpp"
#include "aplspawn/fleet/state.hpp"

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace aplspawn::health {

struct Leader {
    std::optional<fleet::ProcessRef> process;  // nullopt: not running
    std::string problem;                       // why there is none ("" when there is one)
};

// The leader of the container whose record this is (or "" / nullopt record: never started).
Leader find_leader(const std::string& name, const std::optional<fleet::ContainerRecord>& record);

struct ContainerLeader {
    std::string name;
    std::string group;
    std::string ip;
    Leader leader;
};

// The given containers of the config, in their order. A record that cannot be read counts as a
// problem of that container, not an error of the whole call.
std::vector<ContainerLeader> leaders(const config::Config& c,
                                     const std::vector<const config::Container*>& containers);

}  // namespace aplspawn::health
