#include "aplspawn/health/network.hpp"

#include "aplspawn/error.hpp"
#include "aplspawn/fleet/network.hpp"
#include "aplspawn/net/forwarding.hpp"
#include "aplspawn/net/link.hpp"
#include "aplspawn/net/nat.hpp"
#include "aplspawn/net/netlink.hpp"
#include "aplspawn/net/nftables.hpp"
#include "aplspawn/net/vxlan.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <optional>

namespace aplspawn::health {
namespace {

CheckResult make(std::string id, std::string title) {
    CheckResult r;
    r.check = std::move(id);
    r.title = std::move(title);
    return r;
}

// Runs f(result); an Error fails the check with its message.
template <class F>
CheckResult checked(std::string id, std::string title, F&& f) {
    CheckResult r = make(std::move(id), std::move(title));
    try {
        f(r);
    } catch (const Error& e) {
        r.ok = false;
        r.detail = e.message();
    }
    return r;
}

}  // namespace

namespace {

// The three checks of one bridge: exists, carries the host's address, is up. `id` is the prefix
// of their ids ("bridge", "network.backend"), `what` how titles name the bridge.
void bridge_checks(Report& report, std::optional<net::Netlink>& nl, const std::string& nl_error,
                   const std::string& id, const std::string& bridge, const std::string& what,
                   const net::Address& address, const std::string& address_title) {
    std::optional<net::Link> link;
    std::string link_error = nl_error;  // why the bridge could not be looked at
    if (link_error.empty()) {
        try {
            link = net::find_link(*nl, bridge);
        } catch (const Error& e) {
            link_error = e.message();
        }
    }
    // The checks after "exists" say "no bridge" rather than repeat why it is missing.
    auto need_bridge = [&]() -> const net::Link& {
        if (!link_error.empty()) throw Error(link_error);
        if (!link || !link->is_bridge()) throw Error(fmt::format("no bridge {}", bridge));
        return *link;
    };

    report.push_back(checked(id + ".exists", fmt::format("Checking if {} exists", what), [&](CheckResult& r) {
        if (!link_error.empty()) throw Error(link_error);
        if (!link) throw Error(fmt::format("no link named {}", bridge));
        if (!link->is_bridge())
            throw Error(fmt::format("{} exists but is not a bridge ({})", bridge,
                                    link->kind.empty() ? "no link kind" : "kind " + link->kind));
        r.ok = true;
    }));

    report.push_back(checked(id + ".address", address_title, [&](CheckResult& r) {
        const net::Link& l = need_bridge();
        auto have = net::ipv4_addresses(*nl, l.index);
        for (const auto& a : have)
            if (a == address) r.ok = true;
        if (!r.ok) {
            std::vector<std::string> listed;
            for (const auto& a : have) listed.push_back(a.str());
            r.detail = listed.empty() ? "it has no IPv4 address" : fmt::format("it has {}", fmt::join(listed, ", "));
        }
    }));

    report.push_back(checked(id + ".up", fmt::format("Checking if {} is up", what), [&](CheckResult& r) {
        const net::Link& l = need_bridge();
        r.ok = l.up();
        if (!r.ok) r.detail = "it is administratively down";
    }));
}

// A fleet with hosts: the bridge's VXLAN port to the other hosts is there as netup makes it, a
// port of the bridge, up, and floods to every other host.
void fabric_check(Report& report, std::optional<net::Netlink>& nl, const std::string& nl_error,
                  const std::string& id, const net::BridgeSpec& b) {
    const auto& f = *b.fabric;
    report.push_back(checked(id + ".fabric",
                             fmt::format("Checking if {} reaches the other hosts over VXLAN {}", b.title(),
                                         f.vxlan.name),
                             [&](CheckResult& r) {
                                 if (!nl_error.empty()) throw Error(nl_error);
                                 auto v = net::find_link(*nl, f.vxlan.name);
                                 auto br = net::find_link(*nl, b.name);
                                 if (!v) throw Error(fmt::format("no link {} (aplspawn -o netup makes it)", f.vxlan.name));
                                 if (!v->vxlan || *v->vxlan != f.vxlan.info())
                                     throw Error(fmt::format("{} is not the fabric's VXLAN (id {}, port {}, local {})",
                                                             v->name, f.vxlan.vni, f.vxlan.port, f.vxlan.local.str()));
                                 if (!br || v->master != br->index)
                                     throw Error(fmt::format("{} is not a port of bridge {}", v->name, b.name));
                                 if (!v->up()) throw Error(fmt::format("{} is down", v->name));
                                 auto have = net::flood_peers(*nl, *v);
                                 std::vector<std::string> missing;
                                 for (Ipv4 p : f.peers)
                                     if (std::find(have.begin(), have.end(), p) == have.end()) missing.push_back(p.str());
                                 if (!missing.empty())
                                     throw Error(fmt::format("{} does not flood to {}", v->name, fmt::join(missing, ", ")));
                                 r.ok = true;
                             }));
}

}  // namespace

Report network_checks(const config::Config& c) {
    const std::string& bridge = c.bridge.name;
    Report report;

    std::optional<net::Netlink> nl;
    std::string nl_error;
    try {
        nl.emplace(net::Netlink::open());
    } catch (const Error& e) {
        nl_error = e.message();
    }
    const net::NetSpec spec = fleet::host_network_spec(c);
    const net::Address address = spec.main().address;
    bridge_checks(report, nl, nl_error, "bridge", bridge, "bridge " + bridge, address,
                  fmt::format("Checking if bridge has IP {} assigned", address.str()));
    if (spec.main().fabric) fabric_check(report, nl, nl_error, "bridge", spec.main());
    for (std::size_t i = 0; i < c.networks.size(); ++i) {
        const auto& n = c.networks[i];
        const net::BridgeSpec& b = spec.bridges.at(i + 1);
        const std::string what = fmt::format("bridge {} of network {}", n->bridge, n->name);
        bridge_checks(report, nl, nl_error, "network." + n->name, n->bridge, what, b.address,
                      fmt::format("Checking if {} has IP {} assigned", what, b.address.str()));
        if (b.fabric) fabric_check(report, nl, nl_error, "network." + n->name, b);
    }

    report.push_back(checked("forwarding",
                             fmt::format("Checking if traffic forwarding is enabled {}", net::kIpForwardPath),
                             [&](CheckResult& r) {
                                 r.ok = net::ip_forward() == 1;
                                 if (!r.ok) r.detail = "net.ipv4.ip_forward is 0";
                             }));

    report.push_back(checked("nat", fmt::format("Checking NAT table {}", c.nat.table), [&](CheckResult& r) {
        net::Nftables nft;
        const net::NatSpec nat = spec.nat();
        net::NatState st = net::inspect_nat(nft, nat);
        r.ok = st.complete();
        if (!r.ok) r.detail = st.problem(nat);
    }));
    return report;
}

}  // namespace aplspawn::health
