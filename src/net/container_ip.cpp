#include "aplspawn/net/container_ip.hpp"

#include "aplspawn/net/link.hpp"
#include "aplspawn/net/netlink.hpp"

#include <fmt/format.h>

namespace aplspawn::net {

Change configure_container_address(pid_t pid, const std::string& ifname, Ipv4 address, int prefix,
                                   Ipv4 gateway) {
    return with_context(fmt::format("configure {} {}/{} in the network namespace of pid {}", ifname,
                                    address.str(), prefix, pid),
                        [&] {
                            Netlink nl = Netlink::open_in_netns_of(pid);
                            auto link = find_link(nl, ifname);
                            if (!link) throw Error::from_errno(fmt::format("find link {}", ifname), ENODEV);
                            // Address first, then up, then the route: the gateway must be
                            // reachable on an up link before the kernel accepts the route.
                            Change change = add_address(nl, *link, Address{address, prefix});
                            change |= set_link_up(nl, *link, true);
                            change |= set_default_route(nl, *link, gateway);
                            return change;
                        });
}

}  // namespace aplspawn::net
