#include "aplspawn/net/vxlan.hpp"

#include "net/attrs.hpp"

#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fmt/format.h>

#include <algorithm>

namespace aplspawn::net {
namespace {

[[noreturn]] void fail(std::string_view request, std::string_view object, int negative_errno) {
    throw_errno(fmt::format("{} {}", request, object), -negative_errno);
}

// An RTM_NEWNEIGH / RTM_DELNEIGH for the all-zero entry of `vxlan` towards peer.
void flood_entry(Message& msg, const Link& vxlan, Ipv4 peer) {
    auto& nd = msg.family_header<ndmsg>();
    nd.ndm_family = AF_BRIDGE;
    nd.ndm_ifindex = vxlan.index;
    nd.ndm_state = NUD_NOARP | NUD_PERMANENT;
    nd.ndm_flags = NTF_SELF;
    const std::uint8_t zero[6] = {};
    msg.put_bytes(NDA_LLADDR, zero, sizeof zero);
    msg.put_ipv4(NDA_DST, peer);
}

}  // namespace

std::string vxlan_name(std::uint32_t vni) { return fmt::format("apvx{:06x}", vni & 0xffffffu); }

void create_vxlan(Netlink& nl, const VxlanSpec& spec) {
    Message msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    auto& ifi = msg.family_header<ifinfomsg>();
    ifi.ifi_family = AF_UNSPEC;
    msg.put_str(IFLA_IFNAME, spec.name);
    if (spec.mtu > 0) msg.put_u32(IFLA_MTU, static_cast<std::uint32_t>(spec.mtu));
    nlattr* info = msg.nest_start(IFLA_LINKINFO);
    msg.put_str(IFLA_INFO_KIND, "vxlan");
    nlattr* data = msg.nest_start(IFLA_INFO_DATA);
    msg.put_u32(IFLA_VXLAN_ID, spec.vni);
    msg.put_ipv4(IFLA_VXLAN_LOCAL, spec.local);
    const std::uint16_t port = htons(static_cast<std::uint16_t>(spec.port));
    msg.put_bytes(IFLA_VXLAN_PORT, &port, sizeof port);
    const std::uint8_t no = 0;
    msg.put_bytes(IFLA_VXLAN_LEARNING, &no, sizeof no);
    msg.nest_end(data);
    msg.nest_end(info);
    if (int rc = nl.request(msg); rc < 0)
        fail("RTM_NEWLINK vxlan", fmt::format("{} (id {}, port {}, local {})", spec.name, spec.vni, spec.port,
                                              spec.local.str()),
             rc);
}

std::vector<Ipv4> flood_peers(Netlink& nl, const Link& vxlan) {
    Message msg(RTM_GETNEIGH, 0);
    auto& nd = msg.family_header<ndmsg>();
    nd.ndm_family = AF_BRIDGE;
    std::vector<Ipv4> out;
    nl.dump(
        msg,
        [&](const nlmsghdr* nlh) {
            if (nlh->nlmsg_type != RTM_NEWNEIGH) return;
            const auto* n = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(nlh));
            if (n->ndm_family != AF_BRIDGE || n->ndm_ifindex != vxlan.index) return;
            Attrs<NDA_MAX> attrs;
            attrs.parse(nlh, sizeof *n);
            if (!attrs[NDA_LLADDR] || !attrs[NDA_DST] || mnl_attr_get_payload_len(attrs[NDA_LLADDR]) != 6) return;
            const auto* mac = static_cast<const std::uint8_t*>(mnl_attr_get_payload(attrs[NDA_LLADDR]));
            if (std::any_of(mac, mac + 6, [](std::uint8_t b) { return b != 0; })) return;
            out.push_back(attr_ipv4(attrs[NDA_DST]));
        },
        fmt::format("RTM_GETNEIGH bridge entries of {}", vxlan.name));
    return out;
}

Change add_flood_peer(Netlink& nl, const Link& vxlan, Ipv4 peer) {
    auto now = flood_peers(nl, vxlan);
    if (std::find(now.begin(), now.end(), peer) != now.end()) return Change::unchanged;
    // NLM_F_APPEND: one more destination for the all-zero address (several peers share it).
    Message msg(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_APPEND);
    flood_entry(msg, vxlan, peer);
    if (int rc = nl.request(msg); rc < 0 && rc != -EEXIST)
        fail("RTM_NEWNEIGH", fmt::format("00:00:00:00:00:00 dst {} dev {}", peer.str(), vxlan.name), rc);
    return Change::changed;
}

Change remove_flood_peer(Netlink& nl, const Link& vxlan, Ipv4 peer) {
    Message msg(RTM_DELNEIGH, 0);
    flood_entry(msg, vxlan, peer);
    int rc = nl.request(msg);
    if (rc == -ENOENT || rc == -ENODEV) return Change::unchanged;
    if (rc < 0) fail("RTM_DELNEIGH", fmt::format("00:00:00:00:00:00 dst {} dev {}", peer.str(), vxlan.name), rc);
    return Change::changed;
}

std::optional<Link> link_with_address(Netlink& nl, Ipv4 address) {
    for (const auto& la : list_ipv4_addresses(nl))
        if (la.address.address == address)
            for (const auto& l : list_links(nl))
                if (l.index == la.index) return l;
    return std::nullopt;
}

}  // namespace aplspawn::net
