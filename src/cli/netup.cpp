// netup: the fleet's bridge (with its address, up), IPv4 forwarding, and NAT in aplspawn's own
// nftables table. Reads the host, plans the difference, applies it step by step and records
// what it created in the state directory (net.json) so netdown removes exactly that.
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

struct Titles {
    std::string bridge, forwarding, forward_rules, nat_rules;
    explicit Titles(const net::NetSpec& s)
        : bridge(fmt::format("Configuring bridge {}", s.bridge)),
          forwarding("Enabling traffic forwarding system-wide"),
          forward_rules(fmt::format("Configuring nftables forwarding rules in table ip {}", s.table)),
          nat_rules(fmt::format("Configuring nftables NAT rules in table ip {}", s.table)) {}
};

void print_plan(const net::NetSpec& spec, const net::Observed& now, const net::UpPlan& plan) {
    Titles t(spec);
    if (!plan.create_bridge && !plan.add_address && !plan.set_up) step(t.bridge, Change::unchanged);
    if (plan.create_bridge) out::plan(fmt::format("Create bridge {}", spec.bridge));
    if (plan.add_address)
        out::plan(fmt::format("Add address {} to bridge {}", spec.address.str(), spec.bridge));
    if (plan.set_up) out::plan(fmt::format("Set bridge {} up", spec.bridge));
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
        out::plan(fmt::format("  chain {}: accept forwarding from {}, and established/related back to it",
                              net::kForwardChain, spec.bridge));
    if (plan.write_nat_rules)
        out::plan(fmt::format("  chain {}: masquerade {} leaving through any link but {}", net::kPostroutingChain,
                              nat.subnet.str(), spec.bridge));
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

    Change bridge = Change::unchanged;
    with_context(fmt::format("configure bridge {}", spec.bridge), [&] {
        net::Link link;
        if (plan.create_bridge) {
            net::create_bridge(nl, spec.bridge);
            auto made = net::find_link(nl, spec.bridge);
            if (!made) throw Error("created, but it is not there");
            link = *made;
            record.bridge_created = true;
            record.bridge_index = link.index;
            record.address_added = record.link_set_up = false;  // the bridge takes them with it
            save();
            bridge = Change::changed;
        } else {
            link = *now.link;
        }
        if (plan.add_address && net::add_address(nl, link, spec.address) == Change::changed) {
            if (!record.bridge_created) record.address_added = true;
            save();
            bridge = Change::changed;
        }
        if (plan.set_up && net::set_link_up(nl, link, true) == Change::changed) {
            if (!record.bridge_created) record.link_set_up = true;
            save();
            bridge = Change::changed;
        }
    });
    step(t.bridge, bridge);

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
    const net::NetSpec spec{c.bridge.name, net::Address{c.bridge.address, c.bridge.prefix}, c.nat.table};
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
        for (const auto* title : {&t.bridge, &t.forwarding, &t.forward_rules, &t.nat_rules})
            step(*title, Change::unchanged);
    } else {
        auto lock = sys::DirLock::acquire(state.dir(), "netup");
        std::tie(record, now, plan) = look();  // again, now that no other aplspawn can change it
        net::NetRecord rec = record.value_or(net::NetRecord{});
        rec.bridge = spec.bridge;
        rec.address = spec.address.str();
        rec.table = spec.table;
        net::reconcile_record(rec, now);
        apply(nl, nft, spec, now, plan, rec, record, record_file);
    }

    // Advice only: a ruleset that cannot be read (not root, --dry-run) costs the note, not the run.
    try {
        if (!now.nat_unreadable.empty()) throw Error(now.nat_unreadable);
        if (auto note = net::forward_drop_note(nft, spec.table, spec.bridge)) out::info(*note);
    } catch (const Error& e) {
        out::debug(fmt::format("not checked whether the host's firewall drops forwarded traffic: {}", e.message()));
    }
    return Exit::ok;
}

}  // namespace aplspawn::cli
