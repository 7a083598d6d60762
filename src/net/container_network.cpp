#include "aplspawn/net/container_network.hpp"

#include "aplspawn/sys/fd.hpp"
#include "aplspawn/sys/netns.hpp"

#include <fcntl.h>
#include <net/if.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <fmt/format.h>

namespace aplspawn::net {
namespace {

using namespace std::chrono_literals;

// Whether every one of the links (by name and index, in this thread's namespace) is gone by the
// deadline. if_nametoindex looks a name up without the rtnl_lock, which the destruction holds.
bool wait_links_gone(const std::vector<Link>& links, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        bool all_gone = std::all_of(links.begin(), links.end(), [](const Link& l) {
            unsigned idx = ::if_nametoindex(l.name.c_str());
            return idx == 0 || static_cast<int>(idx) != l.index;
        });
        if (all_gone) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(20ms);
    }
}

Link need_link(Netlink& nl, const std::string& name, std::string_view where) {
    auto link = find_link(nl, name);
    if (!link) throw Error::from_errno(fmt::format("find link {} {}", name, where), ENODEV);
    return *link;
}

// The main interface's addresses, link state and route, in the namespace of `inside`.
Change configure_inside(Netlink& inside, const Interface& i) {
    Link link = need_link(inside, i.name, "in the container's namespace");
    // Address first, then up, then the route: the gateway must be reachable on an up link
    // before the kernel accepts the route.
    Change c = add_address(inside, link, i.address);
    c |= set_link_up(inside, link, true);
    if (i.gateway) c |= set_default_route(inside, link, *i.gateway);
    return c;
}

void create_interface(Netlink& host, Netlink& inside, int host_ns, const Interface& i) {
    with_context(fmt::format("interface {} ({} on the host, bridge {})", i.name, i.host_name, i.bridge), [&] {
        Link bridge = need_link(host, i.bridge, "on the host");
        if (!bridge.is_bridge()) throw Error(fmt::format("{} is not a bridge", i.bridge));
        // The bridge's MTU on both ends: a bridge joined to other hosts by VXLAN has the
        // underlay's minus the tunnel's overhead, and full-size packets must cross it whole.
        create_veth(inside, {i.host_name, i.host_mac, i.name, i.mac, bridge.mtu});
        set_alias(inside, need_link(inside, i.host_name, "in the container's namespace"), i.alias);
        move_to_netns(inside, need_link(inside, i.host_name, "in the container's namespace"), host_ns);
        Link end = need_link(host, i.host_name, "on the host");
        set_master(host, end, bridge.index);
        set_link_up(host, end, true);
        configure_inside(inside, i);
    });
}

}  // namespace

void create_container_network(Netlink& host, const ContainerNetwork& spec) {
    with_context(fmt::format("network namespace {}", spec.netns), [&] {
        sys::create_netns(spec.netns);
        try {
            Netlink inside = Netlink::open_in_netns(sys::netns_path(spec.netns).string());
            // The host's namespace, as the socket `host` sees it: this thread's.
            sys::UniqueFd host_ns(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
            if (!host_ns) throw_errno("open /proc/thread-self/ns/net");
            set_link_up(inside, need_link(inside, "lo", "in the container's namespace"), true);
            for (const auto& i : spec.interfaces) create_interface(host, inside, host_ns.get(), i);
        } catch (...) {
            std::vector<HostEnd> ends;
            for (const auto& i : spec.interfaces) ends.push_back({i.host_name, i.alias});
            try {
                remove_container_network(host, spec.netns, ends);
            } catch (const Error&) {
                // the next spawn or stop takes it down (the caller's record names it)
            }
            throw;
        }
    });
}

Change ensure_addresses(Netlink& inside, const std::vector<Interface>& interfaces) {
    Change c = set_link_up(inside, need_link(inside, "lo", "in the container's namespace"), true);
    for (const auto& i : interfaces)
        c |= with_context(fmt::format("interface {}", i.name), [&] { return configure_inside(inside, i); });
    return c;
}

Teardown remove_container_network(Netlink& host, const std::string& netns, const std::vector<HostEnd>& ends,
                                  std::chrono::milliseconds wait) {
    Teardown t;
    // Ours, and still there: the host ends that carry their alias.
    std::vector<Link> ours;
    for (const auto& e : ends) {
        auto link = find_link(host, e.name);
        if (!link) continue;
        if (link->alias != e.alias) {
            t.notes.push_back(fmt::format("link {} is not one aplspawn made for this container (its "
                                          "alias is \"{}\", not \"{}\"): left alone",
                                          e.name, link->alias, e.alias));
            continue;
        }
        ours.push_back(*link);
    }
    // The name first: with nothing running in it, that was the namespace's last reference, and
    // the kernel destroys it with its veth pairs, host ends included, in one batch with every
    // other namespace released meanwhile (one rtnl_lock and RCU grace period for all of them).
    // Deleting each host end on its own (RTM_DELLINK) takes the rtnl_lock through a grace period
    // per link: in a stop of 60 the containers queued for that lock after they had halted.
    t.change |= sys::remove_netns(netns);
    if (ours.empty()) return t;
    t.change = Change::changed;
    if (wait_links_gone(ours, std::chrono::steady_clock::now() + wait)) return t;
    // Still there: something else holds the namespace (a process or a socket in it); delete the
    // pairs ourselves, each as long as that name is still our link.
    for (const Link& l : ours)
        with_context(fmt::format("remove link {}", l.name), [&] {
            auto now = find_link(host, l.name);
            if (now && now->index == l.index) delete_link(host, *now);
        });
    return t;
}

std::vector<InterfaceState> interface_states(Netlink& nl) {
    std::vector<InterfaceState> out;
    for (const Link& l : list_links(nl)) out.push_back({l.name, l.up(), ipv4_addresses(nl, l.index)});
    return out;
}

}  // namespace aplspawn::net
