#include "aplspawn/net/link.hpp"

#include "net/attrs.hpp"

#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/veth.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>

#include <fmt/format.h>

#include <array>
#include <cstring>

namespace aplspawn::net {
namespace {

Link parse_link(const nlmsghdr* nlh) {
    const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
    Attrs<IFLA_MAX> attrs;
    attrs.parse(nlh, sizeof *ifi);
    Link link;
    link.index = ifi->ifi_index;
    link.flags = ifi->ifi_flags;
    if (attrs[IFLA_IFNAME]) link.name = mnl_attr_get_str(attrs[IFLA_IFNAME]);
    if (attrs[IFLA_MASTER]) link.master = static_cast<int>(mnl_attr_get_u32(attrs[IFLA_MASTER]));
    if (attrs[IFLA_IFALIAS]) link.alias = mnl_attr_get_str(attrs[IFLA_IFALIAS]);
    if (attrs[IFLA_MTU]) link.mtu = static_cast<int>(mnl_attr_get_u32(attrs[IFLA_MTU]));
    if (attrs[IFLA_LINKINFO]) {
        Attrs<IFLA_INFO_MAX> info;
        info.parse_nested(attrs[IFLA_LINKINFO]);
        if (info[IFLA_INFO_KIND]) link.kind = mnl_attr_get_str(info[IFLA_INFO_KIND]);
        if (link.kind == "vxlan" && info[IFLA_INFO_DATA]) {
            Attrs<IFLA_VXLAN_MAX> data;
            data.parse_nested(info[IFLA_INFO_DATA]);
            VxlanInfo v;
            if (data[IFLA_VXLAN_ID]) v.vni = mnl_attr_get_u32(data[IFLA_VXLAN_ID]);
            if (data[IFLA_VXLAN_PORT]) v.port = ntohs(mnl_attr_get_u16(data[IFLA_VXLAN_PORT]));
            if (data[IFLA_VXLAN_LOCAL]) v.local = attr_ipv4(data[IFLA_VXLAN_LOCAL]);
            if (data[IFLA_VXLAN_LEARNING]) v.learning = mnl_attr_get_u8(data[IFLA_VXLAN_LEARNING]) != 0;
            link.vxlan = v;
        }
    }
    return link;
}

[[noreturn]] void fail(std::string_view request, std::string_view object, int negative_errno) {
    throw_errno(fmt::format("{} {}", request, object), -negative_errno);
}

ifaddrmsg& address_header(Message& msg, const Link& link, Address address) {
    auto& ifa = msg.family_header<ifaddrmsg>();
    ifa.ifa_family = AF_INET;
    ifa.ifa_prefixlen = static_cast<unsigned char>(address.prefix);
    ifa.ifa_scope = RT_SCOPE_UNIVERSE;
    ifa.ifa_index = static_cast<unsigned>(link.index);
    msg.put_ipv4(IFA_LOCAL, address.address);
    msg.put_ipv4(IFA_ADDRESS, address.address);
    return ifa;
}

// The header of an RTM_NEWLINK that changes the existing link `link`.
void change_header(Message& msg, const Link& link) {
    auto& ifi = msg.family_header<ifinfomsg>();
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = link.index;
}

}  // namespace

std::string MacAddress::str() const {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", bytes[0], bytes[1], bytes[2],
                       bytes[3], bytes[4], bytes[5]);
}

MacAddress stable_mac(std::string_view seed) {
    std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a, 64 bit
    for (unsigned char ch : seed) {
        h ^= ch;
        h *= 0x100000001b3ull;
    }
    MacAddress mac;
    for (std::size_t i = 0; i < mac.bytes.size(); ++i) mac.bytes[i] = static_cast<std::uint8_t>(h >> (8 * i));
    mac.bytes[0] = static_cast<std::uint8_t>((mac.bytes[0] & 0xfe) | 0x02);  // unicast, local
    return mac;
}

bool Link::up() const { return (flags & IFF_UP) != 0; }

std::string Address::str() const { return fmt::format("{}/{}", address.str(), prefix); }

std::optional<Link> find_link(Netlink& nl, std::string_view name) {
    Message msg(RTM_GETLINK, 0);
    auto& ifi = msg.family_header<ifinfomsg>();
    ifi.ifi_family = AF_UNSPEC;
    msg.put_str(IFLA_IFNAME, name);
    std::optional<Link> found;
    int rc = nl.request(msg, [&](const nlmsghdr* nlh) {
        if (nlh->nlmsg_type == RTM_NEWLINK) found = parse_link(nlh);
    });
    if (rc == -ENODEV) return std::nullopt;
    if (rc < 0) fail("RTM_GETLINK", name, rc);
    return found;
}

std::vector<Link> list_links(Netlink& nl) {
    Message msg(RTM_GETLINK, 0);
    auto& ifi = msg.family_header<ifinfomsg>();
    ifi.ifi_family = AF_UNSPEC;
    std::vector<Link> out;
    nl.dump(
        msg,
        [&](const nlmsghdr* nlh) {
            if (nlh->nlmsg_type == RTM_NEWLINK) out.push_back(parse_link(nlh));
        },
        "RTM_GETLINK");
    return out;
}

void create_bridge(Netlink& nl, std::string_view name) {
    Message msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    auto& ifi = msg.family_header<ifinfomsg>();
    ifi.ifi_family = AF_UNSPEC;
    msg.put_str(IFLA_IFNAME, name);
    nlattr* info = msg.nest_start(IFLA_LINKINFO);
    msg.put_str(IFLA_INFO_KIND, "bridge");
    msg.nest_end(info);
    if (int rc = nl.request(msg); rc < 0) fail("RTM_NEWLINK bridge", name, rc);
}

void create_veth(Netlink& nl, const VethSpec& spec) {
    Message msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    auto& ifi = msg.family_header<ifinfomsg>();
    ifi.ifi_family = AF_UNSPEC;
    msg.put_str(IFLA_IFNAME, spec.name);
    msg.put_bytes(IFLA_ADDRESS, spec.mac.bytes.data(), spec.mac.bytes.size());
    if (spec.mtu > 0) msg.put_u32(IFLA_MTU, static_cast<std::uint32_t>(spec.mtu));
    nlattr* info = msg.nest_start(IFLA_LINKINFO);
    msg.put_str(IFLA_INFO_KIND, "veth");
    nlattr* data = msg.nest_start(IFLA_INFO_DATA);
    nlattr* peer = msg.nest_start(VETH_INFO_PEER);
    auto& peer_ifi = msg.nested_header<ifinfomsg>();
    peer_ifi.ifi_family = AF_UNSPEC;
    msg.put_str(IFLA_IFNAME, spec.peer);
    msg.put_bytes(IFLA_ADDRESS, spec.peer_mac.bytes.data(), spec.peer_mac.bytes.size());
    if (spec.mtu > 0) msg.put_u32(IFLA_MTU, static_cast<std::uint32_t>(spec.mtu));
    msg.nest_end(peer);
    msg.nest_end(data);
    msg.nest_end(info);
    if (int rc = nl.request(msg); rc < 0)
        fail("RTM_NEWLINK veth", fmt::format("{} (peer {})", spec.name, spec.peer), rc);
}

Change set_alias(Netlink& nl, const Link& link, std::string_view alias) {
    if (link.alias == alias) return Change::unchanged;
    Message msg(RTM_NEWLINK, 0);
    change_header(msg, link);
    msg.put_str(IFLA_IFALIAS, alias);
    if (int rc = nl.request(msg); rc < 0) fail("RTM_NEWLINK set alias", link.name, rc);
    return Change::changed;
}

void move_to_netns(Netlink& nl, const Link& link, int netns_fd) {
    Message msg(RTM_NEWLINK, 0);
    change_header(msg, link);
    msg.put_u32(IFLA_NET_NS_FD, static_cast<std::uint32_t>(netns_fd));
    if (int rc = nl.request(msg); rc < 0) fail("RTM_NEWLINK move to network namespace", link.name, rc);
}

Change set_master(Netlink& nl, const Link& link, int master_index) {
    if (link.master == master_index) return Change::unchanged;
    Message msg(RTM_NEWLINK, 0);
    change_header(msg, link);
    msg.put_u32(IFLA_MASTER, static_cast<std::uint32_t>(master_index));
    if (int rc = nl.request(msg); rc < 0) fail("RTM_NEWLINK set master", link.name, rc);
    return Change::changed;
}

Change delete_link(Netlink& nl, const Link& link) {
    Message msg(RTM_DELLINK, 0);
    auto& ifi = msg.family_header<ifinfomsg>();
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = link.index;
    int rc = nl.request(msg);
    if (rc == -ENODEV) return Change::unchanged;
    if (rc < 0) fail("RTM_DELLINK", link.name, rc);
    return Change::changed;
}

Change set_mtu(Netlink& nl, const Link& link, int mtu) {
    if (link.mtu == mtu) return Change::unchanged;
    Message msg(RTM_NEWLINK, 0);
    change_header(msg, link);
    msg.put_u32(IFLA_MTU, static_cast<std::uint32_t>(mtu));
    if (int rc = nl.request(msg); rc < 0) fail(fmt::format("RTM_NEWLINK set mtu {}", mtu), link.name, rc);
    return Change::changed;
}

Change set_link_up(Netlink& nl, const Link& link, bool up) {
    if (link.up() == up) return Change::unchanged;
    Message msg(RTM_NEWLINK, 0);
    auto& ifi = msg.family_header<ifinfomsg>();
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = link.index;
    ifi.ifi_change = IFF_UP;
    ifi.ifi_flags = up ? IFF_UP : 0;
    if (int rc = nl.request(msg); rc < 0)
        fail(up ? "RTM_NEWLINK set up" : "RTM_NEWLINK set down", link.name, rc);
    return Change::changed;
}

std::vector<LinkAddress> list_ipv4_addresses(Netlink& nl) {
    Message msg(RTM_GETADDR, 0);
    auto& ifa = msg.family_header<ifaddrmsg>();
    ifa.ifa_family = AF_INET;
    std::vector<LinkAddress> out;
    nl.dump(
        msg,
        [&](const nlmsghdr* nlh) {
            if (nlh->nlmsg_type != RTM_NEWADDR) return;
            const auto* a = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
            if (a->ifa_family != AF_INET) return;
            Attrs<IFA_MAX> attrs;
            attrs.parse(nlh, sizeof *a);
            const nlattr* local = attrs[IFA_LOCAL] ? attrs[IFA_LOCAL] : attrs[IFA_ADDRESS];
            if (!local) return;
            out.push_back({static_cast<int>(a->ifa_index), Address{attr_ipv4(local), a->ifa_prefixlen}});
        },
        "RTM_GETADDR");
    return out;
}

std::vector<Address> ipv4_addresses(Netlink& nl, int index) {
    std::vector<Address> out;
    for (const auto& la : list_ipv4_addresses(nl))
        if (la.index == index) out.push_back(la.address);
    return out;
}

Change add_address(Netlink& nl, const Link& link, Address address) {
    for (const Address& a : ipv4_addresses(nl, link.index))
        if (a == address) return Change::unchanged;
    Message msg(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    address_header(msg, link, address);
    if (address.prefix <= 30)
        msg.put_ipv4(IFA_BROADCAST, Subnet::of(address.address, address.prefix).broadcast());
    int rc = nl.request(msg);
    if (rc == -EEXIST) return Change::unchanged;
    if (rc < 0) fail("RTM_NEWADDR", fmt::format("{} on {}", address.str(), link.name), rc);
    return Change::changed;
}

Change remove_address(Netlink& nl, const Link& link, Address address) {
    bool present = false;
    for (const Address& a : ipv4_addresses(nl, link.index)) present = present || a == address;
    if (!present) return Change::unchanged;
    Message msg(RTM_DELADDR, 0);
    address_header(msg, link, address);
    int rc = nl.request(msg);
    if (rc == -EADDRNOTAVAIL || rc == -ENODEV) return Change::unchanged;
    if (rc < 0) fail("RTM_DELADDR", fmt::format("{} on {}", address.str(), link.name), rc);
    return Change::changed;
}

std::optional<DefaultRoute> default_route(Netlink& nl) {
    Message msg(RTM_GETROUTE, 0);
    auto& rtm = msg.family_header<rtmsg>();
    rtm.rtm_family = AF_INET;
    std::optional<DefaultRoute> found;
    nl.dump(
        msg,
        [&](const nlmsghdr* nlh) {
            if (nlh->nlmsg_type != RTM_NEWROUTE || found) return;
            const auto* r = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
            if (r->rtm_family != AF_INET || r->rtm_dst_len != 0 || r->rtm_type != RTN_UNICAST) return;
            Attrs<RTA_MAX> attrs;
            attrs.parse(nlh, sizeof *r);
            std::uint32_t table = attrs[RTA_TABLE] ? mnl_attr_get_u32(attrs[RTA_TABLE]) : r->rtm_table;
            if (table != RT_TABLE_MAIN) return;
            DefaultRoute route;
            if (attrs[RTA_GATEWAY]) route.gateway = attr_ipv4(attrs[RTA_GATEWAY]);
            if (attrs[RTA_OIF]) route.oif = static_cast<int>(mnl_attr_get_u32(attrs[RTA_OIF]));
            found = route;
        },
        "RTM_GETROUTE");
    return found;
}

Change set_default_route(Netlink& nl, const Link& link, Ipv4 gateway) {
    if (auto current = default_route(nl); current && current->gateway == gateway && current->oif == link.index)
        return Change::unchanged;
    Message msg(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
    auto& rtm = msg.family_header<rtmsg>();
    rtm.rtm_family = AF_INET;
    rtm.rtm_dst_len = 0;
    rtm.rtm_table = RT_TABLE_MAIN;
    rtm.rtm_protocol = RTPROT_BOOT;
    rtm.rtm_scope = RT_SCOPE_UNIVERSE;
    rtm.rtm_type = RTN_UNICAST;
    msg.put_ipv4(RTA_GATEWAY, gateway);
    msg.put_u32(RTA_OIF, static_cast<std::uint32_t>(link.index));
    if (int rc = nl.request(msg); rc < 0)
        fail("RTM_NEWROUTE default", fmt::format("via {} dev {}", gateway.str(), link.name), rc);
    return Change::changed;
}

}  // namespace aplspawn::net
