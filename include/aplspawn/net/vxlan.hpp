// The fabric of a fleet over several hosts: one VXLAN device per fleet bridge, a port of that
// bridge, that carries the bridge's L2 segment to the same bridge on every other host (kernel
// vxlan, no learning, no multicast: one all-zero forwarding entry per peer host, so broadcast and
// unknown traffic is sent to each peer and the bridges learn the rest). docs/multi-host.md.
#pragma once

#include "aplspawn/ipv4.hpp"
#include "aplspawn/net/link.hpp"
#include "aplspawn/net/netlink.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace aplspawn::net {

// VXLAN adds 50 bytes (outer Ethernet 14, IPv4 20, UDP 8, VXLAN 8) to every frame it carries: the
// fabric's links take the underlay's MTU minus this, so full-size packets cross unfragmented.
inline constexpr int kVxlanOverhead = 50;

struct VxlanSpec {
    std::string name;
    std::uint32_t vni = 0;
    int port = 4789;
    Ipv4 local;   // this host's address: the source of the tunnel packets
    int mtu = 0;  // 0: the kernel's choice
    VxlanInfo info() const { return {vni, port, local, false}; }
};

// "apvx" + the VNI in 6 hex digits: one name per VNI, at most 10 bytes.
std::string vxlan_name(std::uint32_t vni);

// Creates the device (nolearning; fails with EEXIST if a link of that name exists). Starts down.
void create_vxlan(Netlink& nl, const VxlanSpec& spec);

// The destinations of the device's all-zero forwarding entries: the peers it floods to.
std::vector<Ipv4> flood_peers(Netlink& nl, const Link& vxlan);
// Adds / removes one all-zero entry towards peer; Change::unchanged when it already was so.
Change add_flood_peer(Netlink& nl, const Link& vxlan, Ipv4 peer);
Change remove_flood_peer(Netlink& nl, const Link& vxlan, Ipv4 peer);

// The link that carries `address` in this namespace (the underlay), or nullopt.
std::optional<Link> link_with_address(Netlink& nl, Ipv4 address);

}  // namespace aplspawn::net
