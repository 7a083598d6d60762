// Links, IPv4 addresses and the default route over rtnetlink: the raw steps netup, netdown,
// status and the container IP setup are made of. Every call acts in the namespace of the given
// Netlink socket. Errors name the request and the object: "RTM_NEWLINK bridge nspawnd0: File
// exists".
#pragma once

#include "aplspawn/ipv4.hpp"
#include "aplspawn/net/netlink.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aplspawn::net {

// What the kernel says of a VXLAN device (IFLA_INFO_DATA of kind "vxlan").
struct VxlanInfo {
    std::uint32_t vni = 0;
    int port = 0;       // UDP destination port
    Ipv4 local;         // source address of the tunnel packets
    bool learning = true;
    friend bool operator==(const VxlanInfo&, const VxlanInfo&) = default;
};

struct Link {
    int index = 0;
    std::string name;
    std::string kind;     // IFLA_INFO_KIND: "bridge", "veth", "dummy"...; "" for none (lo, eth0)
    unsigned flags = 0;   // IFF_*
    int master = 0;       // IFLA_MASTER: the bridge it is a port of (its index), 0 for none
    std::string alias;    // IFLA_IFALIAS ("" for none)
    int mtu = 0;          // IFLA_MTU
    std::optional<VxlanInfo> vxlan;  // kind "vxlan": its parameters
    bool up() const;      // administratively up (IFF_UP): a bridge without ports has no carrier
    bool is_bridge() const { return kind == "bridge"; }
};

struct Address {
    Ipv4 address;
    int prefix = 0;
    friend bool operator==(const Address&, const Address&) = default;
    std::string str() const;  // "10.10.12.1/26"
};

// An Ethernet address.
struct MacAddress {
    std::array<std::uint8_t, 6> bytes{};
    std::string str() const;  // "02:1a:2b:3c:4d:5e"
    friend bool operator==(const MacAddress&, const MacAddress&) = default;
};

// A MAC address that is the same every time for the same seed: locally administered, unicast,
// from a 64-bit FNV-1a hash of the seed. A container's interfaces keep their MAC addresses
// across restarts (as systemd-nspawn's own veths do), so the bridge and the neighbours' ARP
// caches never hold a stale one.
MacAddress stable_mac(std::string_view seed);

// A veth pair made in one request: this end named `name`, the other end `peer`; both in the
// namespace of the socket the request goes to.
struct VethSpec {
    std::string name;
    MacAddress mac;
    std::string peer;
    MacAddress peer_mac;
    int mtu = 0;  // both ends; 0: the kernel's default (1500)
};

struct DefaultRoute {
    Ipv4 gateway;    // 0.0.0.0 when the route has no gateway
    int oif = 0;     // output interface index
};

// The link called name, or nullopt when there is none.
std::optional<Link> find_link(Netlink& nl, std::string_view name);

// Every link of the namespace, by index.
std::vector<Link> list_links(Netlink& nl);

// Creates a bridge (fails with EEXIST if a link of that name exists). The bridge starts down.
void create_bridge(Netlink& nl, std::string_view name);

// Creates a veth pair (fails with EEXIST if a link of either name exists). Both ends start down.
void create_veth(Netlink& nl, const VethSpec& spec);

// Sets a link's alias (IFLA_IFALIAS); Change::unchanged when it already had it.
Change set_alias(Netlink& nl, const Link& link, std::string_view alias);

// Moves a link into the network namespace `netns_fd` refers to (it keeps its name, MAC and
// alias; its addresses and state are lost). The link is no longer visible through nl.
void move_to_netns(Netlink& nl, const Link& link, int netns_fd);

// Makes the link a port of the bridge (master_index), or of none with 0; Change::unchanged when
// it already was.
Change set_master(Netlink& nl, const Link& link, int master_index);

// Deletes a link; Change::unchanged when it was already gone.
Change delete_link(Netlink& nl, const Link& link);

// Sets the link's MTU; Change::unchanged when it already had it.
Change set_mtu(Netlink& nl, const Link& link, int mtu);

// Sets IFF_UP on or off; Change::unchanged when it was already so.
Change set_link_up(Netlink& nl, const Link& link, bool up);

// Every IPv4 address of the namespace and the link it is on.
struct LinkAddress {
    int index = 0;
    Address address;
};
std::vector<LinkAddress> list_ipv4_addresses(Netlink& nl);

// The IPv4 addresses on link index, in the kernel's order.
std::vector<Address> ipv4_addresses(Netlink& nl, int index);

// Adds address (with the subnet's broadcast address, like `ip addr add … brd +`);
// Change::unchanged when it is already there.
Change add_address(Netlink& nl, const Link& link, Address address);

// Removes address; Change::unchanged when it was not there.
Change remove_address(Netlink& nl, const Link& link, Address address);

// The IPv4 default route of the main table, if any.
std::optional<DefaultRoute> default_route(Netlink& nl);

// Makes the main table's default route go via gateway on link (added, or replaced when another
// default route exists). Change::unchanged when it already did.
Change set_default_route(Netlink& nl, const Link& link, Ipv4 gateway);

}  // namespace aplspawn::net
