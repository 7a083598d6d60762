// netup: the fleet's bridge and every network's (each with the host's address, up), IPv4
// forwarding, and NAT and isolation in aplspawn's own nftables table. Reads the host, plans the
// difference, applies it step by step and records what it created in the state directory
// (net.json) so netdown removes exactly that.
#include "aplspawn/fleet/network.hpp"
#include "aplspawn/fleet/state.hpp"
#include "aplspawn/net/forwarding.hpp"
#include "aplspawn/net/host_network.hpp"
#include "aplspawn/output.hpp"
#include "aplspawn/sys/lock.hpp"
#include "cli/operation.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <optional>
#include <tuple>

namespace aplspawn::cli {

namespace fs = std::filesystem;
namespace {

void step(const std::string& title, Change change) {
    out::ok(change == Change::changed ? title : title + std::string(out::already_so));
}

std::string peers_text(const std::vector<Ipv4>& peers) {
    std::vector<std::string> out;
    for (Ipv4 p : peers) out.push_back(p.str());
    return fmt::format("{}", fmt::join(out, ", "));
}

std::string fabric_title(const net::BridgeSpec& b) {
    const auto& f = *b.fabric;
    return fmt::format("Joining bridge {} to {} other host{} over VXLAN {} (id {}, port {})", b.name, f.peers.size(),
                       f.peers.size() == 1 ? "" : "s", f.vxlan.name, f.vxlan.vni, f.vxlan.port);
}

void print_fabric_plan(const net::BridgeSpec& b, const net::FabricUpPlan& p) {
    const auto& v = b.fabric->vxlan;
    if (p.nothing()) step(fabric_title(b), Change::unchanged);
    if (p.create_vxlan)
        out::plan(fmt::format("Create VXLAN {} (id {}, port {}, local {}, no learning, MTU {})", v.name, v.vni, v.port,
                              v.local.str(), p.mtu));
    if (p.set_vxlan_mtu) out::plan(fmt::format("Set VXLAN {} MTU {}", v.name, p.mtu));
    if (p.set_bridge_mtu)
        out::plan(fmt::format("Set bridge {} MTU {} (the underlay's minus {} for VXLAN)", b.name, p.mtu,
                              net::kVxlanOverhead));
    if (p.attach) out::plan(fmt::format("Make {} a port of bridge {}", v.name, b.name));
    if (p.set_up) out::plan(fmt::format("Set {} up", v.name));
    if (!p.add_peers.empty()) out::plan(fmt::format("Flood {} to {}", v.name, peers_text(p.add_peers)));
    if (!p.remove_peers.empty())
        out::plan(fmt::format("Stop flooding {} to {} (no longer hosts of the file)", v.name, peers_text(p.remove_peers)));
}

struct Titles {
    std::vector<std::string> bridges;
    std::string forwarding, forward_rules, nat_rules;
    explicit Titles(const net::NetSpec& s)
        : forwarding("Enabling traffic forwarding system-wide"),
          forward_rules(fmt::format("Configuring nftables forwarding rules in table ip {}", s.table)),
          nat_rules(fmt::format("Configuring nftables NAT rules in table ip {}", s.table)) {
        for (const auto& b : s.bridges) bridges.push_back("Configuring " + b.title());
    }
};

void print_plan(const net::NetSpec& spec, const net::Observed& now, const net::UpPlan& plan) {
    Titles t(spec);
    for (std::size_t i = 0; i < spec.bridges.size(); ++i) {
        const auto& b = spec.bridges[i];
        const auto& p = plan.bridges[i];
        if (p.nothing()) step(t.bridges[i], Change::unchanged);
        if (p.create_bridge) out::plan(fmt::format("Create {}", b.title()));
        if (p.add_address) out::plan(fmt::format("Add address {} to bridge {}", b.address.str(), b.name));
        if (p.set_up) out::plan(fmt::format("Set bridge {} up", b.name));
        if (p.fabric) print_fabric_plan(b, *p.fabric);
    }
    if (plan.enable_forwarding)
        out::plan(fmt::format("Enable traffic forwarding system-wide (net.ipv4.ip_forward {} -> 1)", now.ip_forward));
    else
        step(t.forwarding, Change::unchanged);
    if (!plan.write_table()) {
        step(t.forward_rules, Change::unchanged);
        step(t.nat_rules, Change::unchanged);
        return;
    }
    const auto nat = spec.nat();
    std::string why = now.nat_unreadable.empty()
                          ? (now.nat.table_exists ? "replacing: " + now.nat.problem(nat) : "new")
                          : "cannot tell what is there: " + now.nat_unreadable;
    out::plan(fmt::format("Write nftables table ip {} in one transaction ({})", spec.table, why));
    if (plan.write_forward_rules)
        for (const auto& b : spec.bridges)
            out::plan(b.nat ? fmt::format("  chain {}: accept forwarding from {}, and established/related back to it",
                                          net::kForwardChain, b.name)
                            : fmt::format("  chain {}: drop forwarding into and out of {} (isolated)",
                                          net::kForwardChain, b.name));
    if (plan.write_nat_rules)
        for (const auto& b : spec.bridges)
            if (b.nat)
                out::plan(fmt::format("  chain {}: masquerade {} leaving through any link but {}",
                                      net::kPostroutingChain, b.subnet().str(), b.name));
}

// The fabric's steps on one bridge (already there and up): its VXLAN port made (recorded before
// anything else is done to it), the MTUs, the port attached and up, the peers flooded to.
template <class Save>
Change apply_fabric(net::Netlink& nl, const net::BridgeSpec& b, const net::FabricUpPlan& p, net::BridgeRecord& rec,
                    Save&& save) {
    Change c = Change::unchanged;
    net::VxlanSpec spec = b.fabric->vxlan;
    spec.mtu = p.mtu;
    auto need = [&](const std::string& name) {
        auto link = net::find_link(nl, name);
        if (!link) throw Error::from_errno(fmt::format("find link {}", name), ENODEV);
        return *link;
    };
    if (p.create_vxlan) {
        net::create_vxlan(nl, spec);
        rec.vxlan = spec.name;
        rec.vxlan_index = need(spec.name).index;
        rec.vxlan_created = true;
        save();
        c = Change::changed;
    }
    net::Link bridge = need(b.name);
    if (p.set_bridge_mtu && !rec.bridge_created && !rec.mtu_before) {
        rec.mtu_before = bridge.mtu;
        save();
    }
    net::Link vxlan = need(spec.name);
    if (p.set_vxlan_mtu) c |= net::set_mtu(nl, vxlan, p.mtu);
    if (p.set_bridge_mtu) c |= net::set_mtu(nl, bridge, p.mtu);
    if (p.attach) c |= net::set_master(nl, vxlan, bridge.index);
    if (p.set_up) c |= net::set_link_up(nl, need(spec.name), true);
    for (Ipv4 peer : p.add_peers) c |= net::add_flood_peer(nl, vxlan, peer);
    for (Ipv4 peer : p.remove_peers) c |= net::remove_flood_peer(nl, vxlan, peer);
    return c;
}

// Applies plan, keeping the record up to date after every change (saved atomically); on_disk is
// what the record file held before.
void apply(net::Netlink& nl, net::Nftables& nft, const net::NetSpec& spec, const net::Observed& now,
           const net::UpPlan& plan, net::NetRecord& record, const std::optional<net::NetRecord>& on_disk,
           const fs::path& record_file) {
    Titles t(spec);
    std::string saved = on_disk ? on_disk->to_json() : "";
    auto save = [&] {
        if (std::string text = record.to_json(); text != saved) {
            net::save_record(record_file, record);
            saved = std::move(text);
        }
    };
    save();

    for (std::size_t i = 0; i < spec.bridges.size(); ++i) {
        const net::BridgeSpec& b = spec.bridges[i];
        const net::BridgeUpPlan& p = plan.bridges[i];
        Change bridge = Change::unchanged;
        with_context(fmt::format("configure {}", b.title()), [&] {
            net::BridgeRecord* rec = record.find(b.name);  // netup() made one per bridge
            net::Link link;
            if (p.create_bridge) {
                net::create_bridge(nl, b.name);
                auto made = net::find_link(nl, b.name);
                if (!made) throw Error("created, but it is not there");
                link = *made;
                rec->bridge_created = true;
                rec->bridge_index = link.index;
                rec->address_added = rec->link_set_up = false;  // the bridge takes them with it
                save();
                bridge = Change::changed;
            } else {
                link = *now.bridges[i].link;
            }
            if (p.add_address && net::add_address(nl, link, b.address) == Change::changed) {
                if (!rec->bridge_created) rec->address_added = true;
                save();
                bridge = Change::changed;
            }
            if (p.set_up && net::set_link_up(nl, link, true) == Change::changed) {
                if (!rec->bridge_created) rec->link_set_up = true;
                save();
                bridge = Change::changed;
            }
        });
        step(t.bridges[i], bridge);
        if (p.fabric) {
            Change joined = with_context(fmt::format("join {} to the other hosts", b.title()),
                                         [&] { return apply_fabric(nl, b, *p.fabric, *record.find(b.name), save); });
            step(fabric_title(b), joined);
        }
    }

    Change forwarding = Change::unchanged;
    if (plan.enable_forwarding) {
        forwarding = net::set_ip_forward(1);
        if (forwarding == Change::changed && !record.ip_forward_before) {
            record.ip_forward_before = now.ip_forward;
            save();
        }
    }
    step(t.forwarding, forwarding);

    if (plan.write_table()) net::apply_nat(nft, spec.nat());
    step(t.forward_rules, plan.write_forward_rules ? Change::changed : Change::unchanged);
    step(t.nat_rules, plan.write_nat_rules ? Change::changed : Change::unchanged);
}

}  // namespace

Exit run_netup(const Context& ctx) {
    const config::Config& c = ctx.config;
    const net::NetSpec spec = fleet::host_network_spec(c);
    const fleet::StateDir state(c);
    const fs::path record_file = state.net_state();

    net::Netlink nl = net::Netlink::open();
    net::Nftables nft;
    auto look = [&] {
        auto record = net::load_record(record_file);
        if (record) net::check_record_matches(*record, spec, record_file);
        net::Observed now = net::observe(nl, nft, spec);
        net::UpPlan plan = net::plan_up(spec, now);  // refuses a non-bridge link of that name
        return std::tuple{record, now, plan};
    };

    auto [record, now, plan] = look();
    if (ctx.options.dry_run) {
        print_plan(spec, now, plan);
    } else if (plan.nothing()) {
        // Nothing to change: not even the state directory is touched.
        Titles t(spec);
        for (std::size_t i = 0; i < spec.bridges.size(); ++i) {
            step(t.bridges[i], Change::unchanged);
            if (spec.bridges[i].fabric) step(fabric_title(spec.bridges[i]), Change::unchanged);
        }
        for (const auto* title : {&t.forwarding, &t.forward_rules, &t.nat_rules}) step(*title, Change::unchanged);
    } else {
        auto lock = sys::DirLock::acquire(state.dir(), "netup");
        std::tie(record, now, plan) = look();  // again, now that no other aplspawn can change it
        net::NetRecord rec = record.value_or(net::NetRecord{});
        rec.table = spec.table;
        for (const auto& b : spec.bridges)
            if (!rec.find(b.name)) {
                net::BridgeRecord r;
                r.bridge = b.name;
                r.network = b.network;
                r.address = b.address.str();
                rec.bridges.push_back(std::move(r));
            }
        net::reconcile_record(rec, spec, now);
        apply(nl, nft, spec, now, plan, rec, record, record_file);
    }

    // Advice only: a ruleset that cannot be read (not root, --dry-run) costs the note, not the run.
    try {
        if (!now.nat_unreadable.empty()) throw Error(now.nat_unreadable);
        for (const auto& b : spec.bridges)
            if (auto note = net::forward_drop_note(nft, spec.table, b.name)) out::info(*note);
    } catch (const Error& e) {
        out::debug(fmt::format("not checked whether the host's firewall drops forwarded traffic: {}", e.message()));
    }
    return Exit::ok;
}

}  // namespace aplspawn::cli
