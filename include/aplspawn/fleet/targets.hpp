// Which containers an operation acts on. No targets: the whole fleet (every container of the
// config, and containers only recorded that it no longer has). Targets: group names (that group's
// containers, and recorded containers that were started as members of it) and container names (of
// the config, or recorded). An unknown target is Error::usage naming it and what exists.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/fleet/observe.hpp"
#include "aplspawn/fleet/state.hpp"

#include <set>
#include <string>
#include <vector>

namespace aplspawn::fleet {

struct Selection {
    bool all = true;
    std::set<std::string, std::less<>> names;  // when !all

    bool contains(std::string_view name) const { return all || names.contains(name); }
    // The views of the selected containers, in the view's order.
    FleetView of(const FleetView& view) const;
    // The selected containers of the config, in fleet order.
    std::vector<const config::Container*> of(const config::Config& c) const;
};

// A fleet with hosts: host-side operations act on this host's containers (c.local's groups, and
// what is recorded here); naming another host's group or container is Error::usage naming that
// host. names and inventory describe the whole fleet.
enum class Scope { this_host, whole_fleet };

// `recorded`: names of containers with a record and the group each was started in.
Selection select_targets(const config::Config& c,
                         const std::vector<std::pair<std::string, std::string>>& recorded,
                         const std::vector<std::string>& targets, Scope scope = Scope::this_host);

// The same, reading the records from the state directory.
Selection select_targets(const config::Config& c, const StateDir& state,
                         const std::vector<std::string>& targets, Scope scope = Scope::this_host);

}  // namespace aplspawn::fleet
