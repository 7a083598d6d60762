#include "aplspawn/net/host_network.hpp"

#include "aplspawn/net/forwarding.hpp"
#include "aplspawn/sys/fs.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <charconv>

namespace aplspawn::net {
namespace {

using json = nlohmann::ordered_json;

constexpr const char* kNeedsRoot = "reading nftables needs root";

bool carries(Netlink& nl, const Link& link, const Address& address) {
    for (const Address& a : ipv4_addresses(nl, link.index))
        if (a == address) return true;
    return false;
}

}  // namespace

std::optional<Address> parse_address(std::string_view text) {
    auto slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto ip = Ipv4::parse(text.substr(0, slash));
    std::string_view p = text.substr(slash + 1);
    int prefix = -1;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (!ip || ec != std::errc() || end != p.data() + p.size() || prefix < 0 || prefix > 32) return std::nullopt;
    return Address{*ip, prefix};
}

std::string BridgeSpec::title() const {
    if (network.empty()) return fmt::format("bridge {}", name);
    return fmt::format("bridge {} (network {}, {})", name, network, nat ? "NAT" : "isolated");
}

NatSpec NetSpec::nat() const {
    NatSpec n;
    n.table = table;
    for (const auto& b : bridges) n.bridges.push_back({b.name, b.subnet(), b.nat});
    return n;
}

BridgeRecord* NetRecord::find(std::string_view bridge) {
    for (auto& b : bridges)
        if (b.bridge == bridge) return &b;
    return nullptr;
}

const BridgeRecord* NetRecord::find(std::string_view bridge) const {
    return const_cast<NetRecord*>(this)->find(bridge);
}

std::string NetRecord::to_json() const {
    json list = json::array();
    for (const auto& b : bridges)
        list.push_back({{"bridge", b.bridge},
                        {"network", b.network},
                        {"bridge_created", b.bridge_created},
                        {"bridge_index", b.bridge_index},
                        {"address", b.address},
                        {"address_added", b.address_added},
                        {"link_set_up", b.link_set_up},
                        {"vxlan", b.vxlan},
                        {"vxlan_index", b.vxlan_index},
                        {"vxlan_created", b.vxlan_created},
                        {"mtu_before", b.mtu_before}});
    json j = {{"bridges", list},
              {"table", table},
              {"ip_forward_before", ip_forward_before ? json(*ip_forward_before) : json(nullptr)}};
    return j.dump(2) + "\n";
}

NetRecord NetRecord::from_json(std::string_view text, const std::filesystem::path& file) {
    try {
        json j = json::parse(text);
        NetRecord r;
        auto bridge = [](const json& b) {
            BridgeRecord x;
            x.bridge = b.at("bridge").get<std::string>();
            x.network = b.value("network", "");
            x.bridge_created = b.value("bridge_created", false);
            x.bridge_index = b.value("bridge_index", 0);
            x.address = b.at("address").get<std::string>();
            x.address_added = b.value("address_added", false);
            x.link_set_up = b.value("link_set_up", false);
            x.vxlan = b.value("vxlan", "");
            x.vxlan_index = b.value("vxlan_index", 0);
            x.vxlan_created = b.value("vxlan_created", false);
            x.mtu_before = b.value("mtu_before", 0);
            if (!parse_address(x.address)) throw Error(fmt::format("bad address \"{}\"", x.address));
            return x;
        };
        if (j.contains("bridges"))
            for (const auto& b : j.at("bridges")) r.bridges.push_back(bridge(b));
        else
            r.bridges.push_back(bridge(j));  // one bridge, as earlier versions wrote it
        r.table = j.at("table").get<std::string>();
        if (j.contains("ip_forward_before") && !j["ip_forward_before"].is_null())
            r.ip_forward_before = j["ip_forward_before"].get<int>();
        return r;
    } catch (const json::exception& e) {
        throw Error(fmt::format("net state {}: unreadable: {}", file.string(), e.what()));
    } catch (Error& e) {
        throw std::move(e).wrap(fmt::format("net state {}", file.string()));
    }
}

std::optional<NetRecord> load_record(const std::filesystem::path& file) {
    auto text = sys::read_file_if_exists(file);
    if (!text) return std::nullopt;
    return NetRecord::from_json(*text, file);
}

void save_record(const std::filesystem::path& file, const NetRecord& record) {
    sys::ensure_dir(file.parent_path(), 0700);  // the state directory: private
    sys::write_file_atomic(file, record.to_json(), 0644);
}

Change remove_record(const std::filesystem::path& file) {
    if (::unlink(file.c_str()) == 0) {
        sys::sync_dir(file.parent_path());
        return Change::changed;
    }
    if (errno == ENOENT) return Change::unchanged;
    throw_errno(fmt::format("remove {}", file.string()));
}

void check_record_matches(const NetRecord& r, const NetSpec& spec, const std::filesystem::path& file) {
    std::vector<std::string> diff;
    for (const auto& b : r.bridges) {
        const BridgeSpec* want = nullptr;
        for (const auto& s : spec.bridges)
            if (s.name == b.bridge) want = &s;
        std::string what = b.network.empty() ? fmt::format("bridge {}", b.bridge)
                                             : fmt::format("bridge {} (network {})", b.bridge, b.network);
        if (!want)
            diff.push_back(fmt::format("{}, which the config does not have", what));
        else if (b.address != want->address.str())
            diff.push_back(fmt::format("{} with address {} (config: {})", what, b.address, want->address.str()));
        else if (b.vxlan_created && (!want->fabric || want->fabric->vxlan.name != b.vxlan))
            diff.push_back(fmt::format("{} joined to other hosts by {} (config: {})", what, b.vxlan,
                                       want->fabric ? want->fabric->vxlan.name : "no fabric"));
    }
    if (r.table != spec.table) diff.push_back(fmt::format("table {} (config: {})", r.table, spec.table));
    if (diff.empty()) return;
    throw Error(fmt::format("{} records an earlier netup with {}: run netdown with that configuration first",
                            file.string(), fmt::join(diff, "; ")));
}

Observed observe(Netlink& nl, Nftables& nft, const NetSpec& spec) {
    Observed o;
    for (const auto& b : spec.bridges) {
        BridgeObserved x;
        x.link = find_link(nl, b.name);
        x.has_address = x.link && carries(nl, *x.link, b.address);
        if (b.fabric) {
            x.vxlan = find_link(nl, b.fabric->vxlan.name);
            if (x.vxlan && x.vxlan->vxlan) x.peers = flood_peers(nl, *x.vxlan);
            if (!o.underlay) o.underlay = link_with_address(nl, b.fabric->vxlan.local);
        }
        o.bridges.push_back(std::move(x));
    }
    o.ip_forward = ip_forward();
    // Reading nftables needs CAP_NET_ADMIN; without root only a --dry-run gets here.
    if (::geteuid() == 0)
        o.nat = inspect_nat(nft, spec.nat());
    else
        o.nat_unreadable = kNeedsRoot;
    return o;
}

bool UpPlan::nothing() const {
    for (const auto& b : bridges)
        if (!b.nothing()) return false;
    return !enable_forwarding && !write_table();
}

namespace {

FabricUpPlan plan_fabric(const BridgeSpec& b, const BridgeObserved& o, const std::optional<Link>& underlay) {
    const FabricSpec& f = *b.fabric;
    if (!underlay)
        throw Error(fmt::format("{}: host {}'s address {} (hosts.{}.address) is on no link of this machine: the "
                                "fabric's VXLAN leaves from it",
                                b.title(), f.host, f.vxlan.local.str(), f.host));
    FabricUpPlan fp;
    fp.mtu = underlay->mtu - kVxlanOverhead;
    if (o.vxlan) {
        const Link& v = *o.vxlan;
        if (!v.vxlan || *v.vxlan != f.vxlan.info())
            throw Error(fmt::format(
                "{}: a link {} exists and is not the fabric's VXLAN (id {}, port {}, local {}, no learning): "
                "remove it, or netdown with the configuration that made it",
                b.title(), v.name, f.vxlan.vni, f.vxlan.port, f.vxlan.local.str()));
        if (v.master && (!o.link || v.master != o.link->index))
            throw Error(fmt::format("{}: its fabric port {} is a port of another link", b.title(), v.name));
    }
    fp.create_vxlan = !o.vxlan;
    fp.set_vxlan_mtu = o.vxlan && o.vxlan->mtu != fp.mtu;
    fp.set_bridge_mtu = !o.link || o.link->mtu != fp.mtu;
    fp.attach = !o.vxlan || !o.link || o.vxlan->master != o.link->index;
    fp.set_up = !o.vxlan || !o.vxlan->up();
    for (Ipv4 peer : f.peers)
        if (std::find(o.peers.begin(), o.peers.end(), peer) == o.peers.end()) fp.add_peers.push_back(peer);
    for (Ipv4 peer : o.peers)
        if (std::find(f.peers.begin(), f.peers.end(), peer) == f.peers.end()) fp.remove_peers.push_back(peer);
    return fp;
}

}  // namespace

UpPlan plan_up(const NetSpec& spec, const Observed& now) {
    UpPlan p;
    for (std::size_t i = 0; i < spec.bridges.size(); ++i) {
        const BridgeSpec& b = spec.bridges[i];
        const BridgeObserved& o = now.bridges.at(i);
        if (o.link && !o.link->is_bridge())
            throw Error(fmt::format("{}: a link of that name exists and is not a bridge (it is {}); "
                                    "remove it or choose another {}",
                                    b.title(),
                                    o.link->kind.empty() ? "a device without a link kind" : "of kind " + o.link->kind,
                                    b.network.empty() ? "bridge.name"
                                                      : fmt::format("networks.{}.bridge", b.network)));
        BridgeUpPlan bp;
        bp.create_bridge = !o.link;
        bp.add_address = !o.has_address;
        bp.set_up = !o.link || !o.link->up();
        if (b.fabric) bp.fabric = plan_fabric(b, o, now.underlay);
        p.bridges.push_back(bp);
    }
    p.enable_forwarding = now.ip_forward != 1;
    // Anything else in aplspawn's table is not wanted either: rewriting the table removes it.
    p.write_forward_rules = !now.nat.forward_ok || now.nat.extra;
    p.write_nat_rules = !now.nat.postrouting_ok || now.nat.extra;
    return p;
}

void reconcile_record(NetRecord& record, const NetSpec& spec, const Observed& now) {
    for (std::size_t i = 0; i < spec.bridges.size(); ++i) {
        BridgeRecord* r = record.find(spec.bridges[i].name);
        if (!r) continue;
        const auto& link = now.bridges.at(i).link;
        if (r->bridge_created && (!link || link->index != r->bridge_index)) {
            r->bridge_created = false;
            r->bridge_index = 0;
        }
        if (!link) {
            r->address_added = false;
            r->link_set_up = false;
            r->mtu_before = 0;
        }
        const auto& vxlan = now.bridges.at(i).vxlan;
        if (r->vxlan_created && (!vxlan || vxlan->index != r->vxlan_index)) {
            r->vxlan_created = false;
            r->vxlan_index = 0;
        }
    }
}

DownTarget down_target(const std::optional<NetRecord>& record, const NetSpec& spec) {
    DownTarget t;
    if (!record) {
        for (const auto& b : spec.bridges) t.bridges.push_back({b.name, b.address, ""});
        t.table = spec.table;
        return t;
    }
    // from_json() has checked the addresses.
    for (const auto& b : record->bridges)
        t.bridges.push_back({b.bridge, *parse_address(b.address), b.vxlan_created ? b.vxlan : ""});
    t.table = record->table;
    return t;
}

DownObserved observe_down(Netlink& nl, Nftables& nft, const DownTarget& target) {
    DownObserved o;
    for (const auto& b : target.bridges) {
        BridgeObserved x;
        x.link = find_link(nl, b.bridge);
        x.has_address = x.link && carries(nl, *x.link, b.address);
        if (!b.vxlan.empty()) x.vxlan = find_link(nl, b.vxlan);
        o.bridges.push_back(std::move(x));
    }
    o.ip_forward = ip_forward();
    if (::geteuid() == 0)
        o.table_exists = list_table(nft, target.table).has_value();
    else
        o.table_unreadable = kNeedsRoot;
    return o;
}

bool DownPlan::nothing() const {
    for (const auto& b : bridges)
        if (!b.nothing()) return false;
    return !remove_table && !restore_forwarding;
}

DownPlan plan_down(const std::optional<NetRecord>& record, const DownTarget& target, const DownObserved& now) {
    DownPlan p;
    p.target = target;
    // The table is aplspawn's own by its name: it goes whoever made it.
    p.remove_table = now.table_exists || !now.table_unreadable.empty();
    for (std::size_t i = 0; i < target.bridges.size(); ++i) {
        const std::string& name = target.bridges[i].bridge;
        const BridgeObserved& o = now.bridges.at(i);
        BridgeDownPlan bp;
        const BridgeRecord* r = record ? record->find(name) : nullptr;
        if (r && r->vxlan_created) {
            if (o.vxlan && o.vxlan->index == r->vxlan_index && o.vxlan->vxlan)
                bp.delete_vxlan = true;
            else if (o.vxlan)
                p.notes.push_back(fmt::format("bridge {}: link {} is not the fabric port netup made (that one is "
                                              "gone), left as it is",
                                              name, r->vxlan));
        }
        if (!r) {
            if (o.link)
                p.notes.push_back(fmt::format("bridge {}: no record of netup creating or changing it, left as it is",
                                              name));
        } else if (r->bridge_created) {
            if (o.link && o.link->index == r->bridge_index && o.link->is_bridge())
                bp.delete_bridge = true;
            else if (o.link)
                p.notes.push_back(fmt::format("bridge {}: not the bridge netup created (that one is gone), "
                                              "left as it is",
                                              name));
        } else if (o.link) {
            bp.remove_address = r->address_added && o.has_address;
            bp.set_down = r->link_set_up && o.link->up();
            if (r->mtu_before && o.link->mtu != r->mtu_before) bp.restore_mtu = r->mtu_before;
        }
        p.bridges.push_back(bp);
    }
    if (record && record->ip_forward_before && now.ip_forward != *record->ip_forward_before)
        p.restore_forwarding = *record->ip_forward_before;
    return p;
}

}  // namespace aplspawn::net
