// netdown: removes exactly what netup created (its record in the state directory, net.json):
// aplspawn's nftables table, every bridge it created (or the address it added to one it found),
// the fabric's VXLAN ports of a fleet with hosts, and ip_forward back to what it was. Refuses while containers of the fleet run, unless --force.
#include "aplspawn/fleet/network.hpp"
#include "aplspawn/fleet/state.hpp"
#include "aplspawn/net/forwarding.hpp"
#include "aplspawn/net/host_network.hpp"
#include "aplspawn/output.hpp"
#include "aplspawn/sys/lock.hpp"
#include "cli/operation.hpp"

#include <fmt/format.h>

#include <optional>
#include <tuple>

namespace aplspawn::cli {

namespace fs = std::filesystem;
namespace {

void step(const std::string& title, Change change) {
    out::ok(change == Change::changed ? title : title + std::string(out::already_so));
}

void refuse_while_running(const config::Config& c, bool force) {
    auto running = fleet::running(c);
    if (running.empty()) return;
    std::vector<std::string> names;
    for (const auto& r : running) names.push_back(r.name);
    std::string which = fmt::format("{} container{} of the fleet {} running ({})", running.size(),
                                    running.size() == 1 ? "" : "s", running.size() == 1 ? "is" : "are",
                                    fmt::join(names, ", "));
    if (!force) throw Error(fmt::format("netdown: {}: stop them first (aplspawn -o stop), or use --force", which));
    out::info(fmt::format("--force: {}; they lose their network", which));
}

// A note says why the bridge is left alone: no "already so" line for it then.
bool mentioned(const std::vector<std::string>& notes, const std::string& bridge) {
    for (const auto& n : notes)
        if (n.starts_with(fmt::format("bridge {}:", bridge))) return true;
    return false;
}

std::string forwarding_title(const net::DownPlan& p) {
    return p.restore_forwarding
               ? fmt::format("Restoring traffic forwarding system-wide (net.ipv4.ip_forward {})", *p.restore_forwarding)
               : std::string("Restoring traffic forwarding system-wide");
}

void print_plan(const net::DownPlan& p, const net::DownObserved& now) {
    const auto& t = p.target;
    if (p.remove_table && !now.table_unreadable.empty())
        out::plan(fmt::format("Delete nftables table ip {} if it exists (cannot tell: {})", t.table,
                              now.table_unreadable));
    else if (p.remove_table)
        out::plan(fmt::format("Delete nftables table ip {}", t.table));
    else
        step(fmt::format("Removing nftables table ip {}", t.table), Change::unchanged);
    if (p.restore_forwarding)
        out::plan(fmt::format("Set net.ipv4.ip_forward back to {}", *p.restore_forwarding));
    else
        step(forwarding_title(p), Change::unchanged);
    for (std::size_t i = 0; i < t.bridges.size(); ++i) {
        const auto& b = t.bridges[i];
        const auto& bp = p.bridges[i];
        if (bp.delete_vxlan) out::plan(fmt::format("Delete VXLAN {} (bridge {}'s port to the other hosts)", b.vxlan, b.bridge));
        if (bp.restore_mtu) out::plan(fmt::format("Set bridge {} MTU back to {}", b.bridge, bp.restore_mtu));
        if (bp.delete_bridge) out::plan(fmt::format("Delete bridge {}", b.bridge));
        if (bp.remove_address) out::plan(fmt::format("Remove address {} from bridge {}", b.address.str(), b.bridge));
        if (bp.set_down) out::plan(fmt::format("Set bridge {} down", b.bridge));
        if (bp.nothing() && !mentioned(p.notes, b.bridge))
            step(fmt::format("Removing bridge {}", b.bridge), Change::unchanged);
    }
    for (const auto& note : p.notes) out::info(note);
}

void apply(net::Netlink& nl, net::Nftables& nft, const net::DownPlan& p, const net::DownObserved& now) {
    const auto& t = p.target;
    step(fmt::format("Removing nftables table ip {}", t.table),
         p.remove_table ? net::remove_nat(nft, t.table) : Change::unchanged);
    step(forwarding_title(p),
         p.restore_forwarding ? net::set_ip_forward(*p.restore_forwarding) : Change::unchanged);
    for (std::size_t i = 0; i < t.bridges.size(); ++i) {
        const auto& b = t.bridges[i];
        const auto& bp = p.bridges[i];
        const auto& link = now.bridges[i].link;
        if (bp.delete_vxlan) {
            with_context(fmt::format("remove VXLAN {}", b.vxlan), [&] { net::delete_link(nl, *now.bridges[i].vxlan); });
            step(fmt::format("Removing VXLAN {} (bridge {}'s port to the other hosts)", b.vxlan, b.bridge),
                 Change::changed);
        }
        if (bp.restore_mtu) {
            with_context(fmt::format("set bridge {} MTU {}", b.bridge, bp.restore_mtu),
                         [&] { net::set_mtu(nl, *link, bp.restore_mtu); });
            step(fmt::format("Setting bridge {} MTU back to {}", b.bridge, bp.restore_mtu), Change::changed);
        }
        if (bp.delete_bridge) {
            with_context(fmt::format("remove bridge {}", b.bridge), [&] { net::delete_link(nl, *link); });
            step(fmt::format("Removing bridge {}", b.bridge), Change::changed);
        }
        if (bp.remove_address) {
            with_context(fmt::format("remove address {} from bridge {}", b.address.str(), b.bridge),
                         [&] { net::remove_address(nl, *link, b.address); });
            step(fmt::format("Removing address {} from bridge {}", b.address.str(), b.bridge), Change::changed);
        }
        if (bp.set_down) {
            with_context(fmt::format("set bridge {} down", b.bridge), [&] { net::set_link_up(nl, *link, false); });
            step(fmt::format("Setting bridge {} down, as netup found it", b.bridge), Change::changed);
        }
        if (bp.nothing() && !mentioned(p.notes, b.bridge))
            step(fmt::format("Removing bridge {}", b.bridge), Change::unchanged);
    }
    for (const auto& note : p.notes) out::info(note);
}

}  // namespace

Exit run_netdown(const Context& ctx) {
    const config::Config& c = ctx.config;
    const net::NetSpec spec = fleet::host_network_spec(c);
    const fleet::StateDir state(c);
    const fs::path record_file = state.net_state();

    // The lock lives in the state directory; without one there is no fleet and no record, and
    // netdown must not create it.
    std::optional<sys::DirLock> lock;
    std::error_code ec;
    if (!ctx.options.dry_run && fs::is_directory(state.dir(), ec)) lock = sys::DirLock::acquire(state.dir(), "netdown");

    refuse_while_running(c, ctx.options.force);

    net::Netlink nl = net::Netlink::open();
    net::Nftables nft;
    auto record = net::load_record(record_file);
    auto target = net::down_target(record, spec);
    auto now = net::observe_down(nl, nft, target);
    auto plan = net::plan_down(record, target, now);

    if (ctx.options.dry_run) {
        print_plan(plan, now);
        if (record) out::plan(fmt::format("Remove the record {}", record_file.string()));
        return Exit::ok;
    }
    apply(nl, nft, plan, now);
    // Everything it recorded is undone (or was already): the record goes.
    if (record) net::remove_record(record_file);
    return Exit::ok;
}

}  // namespace aplspawn::cli
