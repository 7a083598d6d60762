// A container's network namespace, made by aplspawn before the container starts; both launchers
// then start systemd-nspawn inside it (fleet/launch.hpp). Per network the container is
// on, one veth pair:
//   - its container end is made inside the namespace under its final name (host0 on the fleet's
//     bridge, the network's name on the others), with a stable MAC, its address, up; the main
//     interface also carries the default route;
//   - its host end gets aplspawn's own short name (chosen by the caller), a stable MAC and an
//     alias that says who made it, and becomes a port of the network's bridge, up.
// The host end is made inside the namespace too, given its alias there and only then moved out:
// on the host there is never a link of ours without its alias, so the alias proves ownership even
// after a kill -9 at any point. Everything is in place before the container's init starts.
#pragma once

#include "aplspawn/error.hpp"
#include "aplspawn/ipv4.hpp"
#include "aplspawn/net/link.hpp"
#include "aplspawn/net/netlink.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace aplspawn::net {

struct Interface {
    std::string name;             // inside the container: "host0", or the network's name
    Address address;              // its address there
    std::optional<Ipv4> gateway;  // the default route goes via it (the main interface only)
    MacAddress mac;               // inside
    std::string bridge;           // the host's bridge the other end is a port of
    std::string host_name;        // the other end on the host (at most 15 bytes)
    MacAddress host_mac;
    std::string alias;            // the host end's alias: who made it
};

struct ContainerNetwork {
    std::string netns;                  // the namespace's name: /run/netns/NAME
    std::vector<Interface> interfaces;  // the main interface first
};

// Makes the namespace and every interface from nothing. Throws Error naming the step and the
// object (EEXIST when the namespace's name or a host end's name is taken); what it made is then
// taken down again. Runs from the host's network namespace (the socket host).
void create_container_network(Netlink& host, const ContainerNetwork& spec);

// In an existing namespace (the socket `inside`; a container an interrupted run started): every
// interface has its address and is up, the default route is there. Change::unchanged when all
// was so.
Change ensure_addresses(Netlink& inside, const std::vector<Interface>& interfaces);

// A host end to take down: its name and the alias that makes it ours.
struct HostEnd {
    std::string name;
    std::string alias;
};

struct Teardown {
    Change change = Change::unchanged;
    std::vector<std::string> notes;  // links of a host end's name that are not ours: left alone
};

// Removes the namespace's name, so that the kernel destroys the namespace with its veth pairs,
// and waits up to `wait` until every host end that carried its alias is gone; those that stay
// (the namespace held by something else) are deleted. A link of an end's name without the alias
// is left alone (a note). Safe to run again, and on a half-made network.
//
// The kernel destroys a released namespace in a worker, batching every namespace released
// meanwhile: 60 at once took well under a second on the loaded 2-core test machine
// (docs/benchmarks.md, Scale).
inline constexpr std::chrono::milliseconds kReleasedNetnsGone{10000};
Teardown remove_container_network(Netlink& host, const std::string& netns,
                                  const std::vector<HostEnd>& ends,
                                  std::chrono::milliseconds wait = kReleasedNetnsGone);

// An interface as seen in a namespace: for status.
struct InterfaceState {
    std::string name;
    bool up = false;
    std::vector<Address> addresses;
};

// The interfaces and IPv4 addresses in the namespace of the socket.
std::vector<InterfaceState> interface_states(Netlink& nl);

}  // namespace aplspawn::net
