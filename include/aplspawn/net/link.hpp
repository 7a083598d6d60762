// Links, IPv4 addresses and the default route over rtnetlink: the raw steps netup, netdown,
// status and the container IP setup are made of. Every call acts in the namespace of the given
// Netlink socket. Errors name the request and the object: "RTM_NEWLINK bridge nspawnd0: File
// exists".
#pragma once

#include "aplspawn/ipv4.hpp"
#include "aplspawn/net/netlink.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aplspawn::net {

struct Link {
    int index = 0;
    std::string name;
    std::string kind;     // IFLA_INFO_KIND: "bridge", "veth", "dummy"...; "" for none (lo, eth0)
    unsigned flags = 0;   // IFF_*
    bool up() const;      // administratively up (IFF_UP): a bridge without ports has no carrier
    bool is_bridge() const { return kind == "bridge"; }
};

struct Address {
    Ipv4 address;
    int prefix = 0;
    friend bool operator==(const Address&, const Address&) = default;
    std::string str() const;  // "10.10.12.1/26"
};

struct DefaultRoute {
    Ipv4 gateway;    // 0.0.0.0 when the route has no gateway
    int oif = 0;     // output interface index
};

// The link called name, or nullopt when there is none.
std::optional<Link> find_link(Netlink& nl, std::string_view name);

// Creates a bridge (fails with EEXIST if a link of that name exists). The bridge starts down.
void create_bridge(Netlink& nl, std::string_view name);

// Deletes a link; Change::unchanged when it was already gone.
Change delete_link(Netlink& nl, const Link& link);

// Sets IFF_UP on or off; Change::unchanged when it was already so.
Change set_link_up(Netlink& nl, const Link& link, bool up);

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
