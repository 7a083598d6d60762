#include "aplspawn/health/network.hpp"

#include "aplspawn/error.hpp"
#include "aplspawn/fleet/network.hpp"
#include "aplspawn/net/forwarding.hpp"
#include "aplspawn/net/link.hpp"
#include "aplspawn/net/nat.hpp"
#include "aplspawn/net/netlink.hpp"
#include "aplspawn/net/nftables.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

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
    const net::Address address{c.bridge.address, c.bridge.prefix};
    bridge_checks(report, nl, nl_error, "bridge", bridge, "bridge " + bridge, address,
                  fmt::format("Checking if bridge has IP {} assigned", address.str()));
    for (const auto& n : c.networks) {
        const net::Address a{n->address, n->prefix};
        const std::string what = fmt::format("bridge {} of network {}", n->bridge, n->name);
        bridge_checks(report, nl, nl_error, "network." + n->name, n->bridge, what, a,
                      fmt::format("Checking if {} has IP {} assigned", what, a.str()));
    }

    report.push_back(checked("forwarding",
                             fmt::format("Checking if traffic forwarding is enabled {}", net::kIpForwardPath),
                             [&](CheckResult& r) {
                                 r.ok = net::ip_forward() == 1;
                                 if (!r.ok) r.detail = "net.ipv4.ip_forward is 0";
                             }));

    report.push_back(checked("nat", fmt::format("Checking NAT table {}", c.nat.table), [&](CheckResult& r) {
        net::Nftables nft;
        const net::NatSpec spec = fleet::host_network_spec(c).nat();
        net::NatState st = net::inspect_nat(nft, spec);
        r.ok = st.complete();
        if (!r.ok) r.detail = st.problem(spec);
    }));
    return report;
}

}  // namespace aplspawn::health
