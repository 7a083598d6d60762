// Which host of a fleet with hosts this run is: --host NAME, else the host whose address this
// machine carries (docs/multi-host.md). Operations that act on this machine's part of the fleet
// need one; names and inventory also run on a controller that is none of them.
#include "aplspawn/net/link.hpp"
#include "cli/operation.hpp"

namespace aplspawn::cli {

void place_this_machine(config::Config& c, const Options& o, const Operation& op) {
    std::vector<Ipv4> own;
    if (c.multi_host() && o.host.empty()) {
        net::Netlink nl = net::Netlink::open();
        for (const auto& la : net::list_ipv4_addresses(nl)) own.push_back(la.address.address);
    }
    config::place_on_host(c, o.host, own, op.needs_host);
}

}  // namespace aplspawn::cli
