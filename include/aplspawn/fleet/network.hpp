// A container's networks, as aplspawn makes them before the container starts
// (net/container_network.hpp): the namespace /run/netns/aplspawn-NAME, host0 on the fleet's
// bridge with the default route, and one interface named after each network of its group.
//
// What is made is recorded in state/networks/NAME.json BEFORE any of it exists, and the record is
// removed only AFTER all of it is gone. So after a kill -9 at any point, the record names
// everything that may be on the host (the namespace, the host ends of its veths), and the next
// spawn, stop or cleanup takes exactly that down: no "File exists", no leaked veth, namespace
// file or bridge port. A host end is deleted only while it carries the alias aplspawn gave it.
//
// Host ends get aplspawn's own names, "ap" + 8 hex digits + the interface's number (ap1f3a9c2e0):
// short (the kernel allows 15 bytes), the same on every spawn of a container (kept in the
// record), and free of the collisions that truncated machine names give nspawn's vb-NAME
// (systemd issues 10721, 13417): the hex digits hash the state directory and container name, and
// a name some other link has is never taken.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/fleet/state.hpp"
#include "aplspawn/net/container_network.hpp"
#include "aplspawn/net/host_network.hpp"

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace aplspawn::fleet {

// The host's side of the fleet's networks, for netup, netdown and status: the fleet's bridge
// (NATed), then each network's bridge (NATed or isolated), and aplspawn's nftables table. A
// fleet with hosts: this host's own addresses on them, and each joined to the other hosts' by a
// VXLAN port (VNI fabric.vxlanId + its place: the fleet's bridge 0, the networks 1, 2, ...).
net::NetSpec host_network_spec(const config::Config& c);

// The name of a container's network namespace: "aplspawn-NAME".
std::string netns_name(const std::string& container);

struct NetworkRecord {
    std::string netns;
    struct Link {
        std::string interface;  // inside: host0, backend
        std::string host;       // the host end's name
        std::string bridge;
        std::string address;    // "10.20.0.30/24"
        std::string alias;      // the host end's alias
    };
    std::vector<Link> links;

    std::string to_json() const;
    // Throws Error "network record FILE: ..." when the text is not a record.
    static NetworkRecord from_json(std::string_view text, const fs::path& file);
};

std::optional<NetworkRecord> load_network_record(const StateDir& state, const std::string& name);

// The interfaces a container has (host0 first, then one per network of its group) and the
// namespace they live in. Host end names come from `recorded` where it has one for the
// interface, else are new ones that no link of `host` has (or only a leftover of this very
// interface, with its alias).
net::ContainerNetwork wanted_network(const config::Config& c, const config::Container& ct,
                                     const StateDir& state, net::Netlink& host,
                                     const std::optional<NetworkRecord>& recorded);

// The container's interfaces as the config says (host0 first), without host end names.
std::vector<net::Interface> interfaces_of(const config::Config& c, const config::Container& ct);

// "host0 10.10.12.10/26 via 10.10.12.1, backend 10.20.0.30/24": for step lines.
std::string describe(const net::ContainerNetwork& network);
std::string describe_network(const config::Config& c, const config::Container& ct);

// In the network namespace of the container's PID 1: every interface has its address and is
// up, the default route is there (a container an interrupted run started).
Change ensure_network_addresses(const config::Config& c, const config::Container& ct, pid_t leader);

// When the container's recorded network differs from the config's: what it runs with and what
// the config says ("backend 10.20.0.30/24", "backend 10.20.0.31/24").
std::optional<std::pair<std::string, std::string>> network_differs(const StateDir& state,
                                                                   const config::Config& c,
                                                                   const config::Container& ct);

struct NetworkResult {
    net::ContainerNetwork network;
    Change taken_down = Change::unchanged;  // what an earlier, interrupted run left was removed
    std::vector<std::string> notes;
};

// The container's network from nothing, for a container that does not run: takes down what its
// record names (an interrupted run's), records the new one, then makes it. Throws Error; the
// record then still names what may exist.
NetworkResult create_network(const config::Config& c, const config::Container& ct, const StateDir& state);

// Takes down what the container's record names and removes the record. Unchanged when there is
// no record. Only for a container that does not run.
net::Teardown remove_network(const StateDir& state, const std::string& name);

}  // namespace aplspawn::fleet
