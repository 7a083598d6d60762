#include "aplspawn/fleet/network.hpp"

#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/netns.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>

namespace aplspawn::fleet {
namespace {

using json = nlohmann::ordered_json;

fs::path record_path(const StateDir& state, const std::string& name) {
    return state.dir() / "networks" / (name + ".json");
}

std::uint32_t fnv1a(std::string_view s) {
    std::uint32_t h = 0x811c9dc5u;
    for (unsigned char ch : s) {
        h ^= ch;
        h *= 0x01000193u;
    }
    return h;
}

// The fleet, in aliases: its state directory, hashed.
std::string fleet_id(const StateDir& state) { return fmt::format("{:08x}", fnv1a(state.dir().string())); }

std::string alias_of(const StateDir& state, const std::string& container, const std::string& interface) {
    return fmt::format("aplspawn:{}:{}:{}", fleet_id(state), container, interface);
}

// Candidate host end names for interface number `n` of a container: the first from its name, the
// others (when a link of some other owner has it) salted.
std::string host_name_candidate(const StateDir& state, const std::string& container, std::size_t n,
                                int attempt) {
    std::string seed = state.dir().string() + "/" + container;
    if (attempt > 0) seed += fmt::format("#{}", attempt);
    return fmt::format("ap{:08x}{}", fnv1a(seed), n);
}

void save_record(const StateDir& state, const std::string& name, const NetworkRecord& r) {
    fs::path file = record_path(state, name);
    sys::ensure_dir(file.parent_path(), 0700);  // 0700: fleet/private_dirs.hpp
    sys::write_file_atomic(file, r.to_json(), 0644);
}

void remove_record(const StateDir& state, const std::string& name) {
    fs::path file = record_path(state, name);
    if (::unlink(file.c_str()) < 0 && errno != ENOENT) throw_errno(fmt::format("remove {}", file.string()));
}

NetworkRecord record_of(const net::ContainerNetwork& n) {
    NetworkRecord r;
    r.netns = n.netns;
    for (const auto& i : n.interfaces) r.links.push_back({i.name, i.host_name, i.bridge, i.address.str(), i.alias});
    return r;
}

}  // namespace

net::NetSpec host_network_spec(const config::Config& c) {
    net::NetSpec s;
    s.table = c.nat.table;
    s.bridges.push_back({c.bridge.name, {c.gateway(), c.bridge.prefix}, "", true, std::nullopt});
    for (const auto& n : c.networks)
        s.bridges.push_back({n->bridge, {c.address_on(*n), n->prefix}, n->name, n->nat, std::nullopt});
    if (c.local) {  // a fleet over several hosts: every bridge joined to the others' by VXLAN
        std::vector<Ipv4> peers;
        for (const auto& h : c.hosts)
            if (h != c.local) peers.push_back(h->address);
        for (std::size_t i = 0; i < s.bridges.size(); ++i) {
            const std::uint32_t vni = c.fabric.vni(static_cast<int>(i));
            s.bridges[i].fabric = net::FabricSpec{{net::vxlan_name(vni), vni, c.fabric.port, c.local->address, 0},
                                                  peers, c.local->name};
        }
    }
    return s;
}

std::string netns_name(const std::string& container) { return "aplspawn-" + container; }

std::string NetworkRecord::to_json() const {
    json links_json = json::array();
    for (const auto& l : links)
        links_json.push_back({{"interface", l.interface},
                              {"host", l.host},
                              {"bridge", l.bridge},
                              {"address", l.address},
                              {"alias", l.alias}});
    json j = {{"netns", netns}, {"links", links_json}};
    return j.dump(2) + "\n";
}

NetworkRecord NetworkRecord::from_json(std::string_view text, const fs::path& file) {
    try {
        json j = json::parse(text);
        NetworkRecord r;
        r.netns = j.at("netns").get<std::string>();
        for (const auto& l : j.at("links"))
            r.links.push_back({l.at("interface").get<std::string>(), l.at("host").get<std::string>(),
                               l.value("bridge", ""), l.value("address", ""), l.at("alias").get<std::string>()});
        if (r.netns.empty() || r.netns.find('/') != std::string::npos)
            throw Error(fmt::format("bad namespace name \"{}\"", r.netns));
        return r;
    } catch (const json::exception& e) {
        throw Error(fmt::format("network record {}: unreadable: {}", file.string(), e.what()));
    } catch (Error& e) {
        throw std::move(e).wrap(fmt::format("network record {}", file.string()));
    }
}

std::optional<NetworkRecord> load_network_record(const StateDir& state, const std::string& name) {
    fs::path file = record_path(state, name);
    auto text = sys::read_file_if_exists(file);
    if (!text) return std::nullopt;
    return NetworkRecord::from_json(*text, file);
}

std::vector<net::Interface> interfaces_of(const config::Config& c, const config::Container& ct) {
    std::vector<net::Interface> out;
    auto add = [&](const std::string& name, net::Address address, std::optional<Ipv4> gateway,
                   const std::string& bridge) {
        net::Interface i;
        i.name = name;
        i.address = address;
        i.gateway = gateway;
        i.bridge = bridge;
        i.mac = net::stable_mac(fmt::format("aplspawn:{}:{}", ct.name, name));
        i.host_mac = net::stable_mac(fmt::format("aplspawn-host:{}:{}", ct.name, name));
        out.push_back(std::move(i));
    };
    add(std::string(config::kMainInterface), {ct.ip, ct.vars().prefix}, ct.vars().gateway, c.bridge.name);
    for (const auto& a : ct.networks) add(a.network->name, {a.ip, a.network->prefix}, std::nullopt, a.network->bridge);
    return out;
}

net::ContainerNetwork wanted_network(const config::Config& c, const config::Container& ct,
                                     const StateDir& state, net::Netlink& host,
                                     const std::optional<NetworkRecord>& recorded) {
    net::ContainerNetwork n;
    n.netns = netns_name(ct.name);
    for (net::Interface i : interfaces_of(c, ct)) {
        const std::string& name = i.name;
        i.alias = alias_of(state, ct.name, name);
        if (recorded)
            for (const auto& l : recorded->links)
                if (l.interface == name && !l.host.empty()) i.host_name = l.host;
        for (int attempt = 0; i.host_name.empty(); ++attempt) {
            if (attempt == 16)
                throw Error(fmt::format("no free name for the host end of {}'s interface {}", ct.name, name));
            std::string candidate = host_name_candidate(state, ct.name, n.interfaces.size(), attempt);
            bool taken_by_us = std::any_of(n.interfaces.begin(), n.interfaces.end(),
                                           [&](const auto& o) { return o.host_name == candidate; });
            auto link = net::find_link(host, candidate);
            if (!taken_by_us && (!link || link->alias == i.alias)) i.host_name = candidate;
        }
        n.interfaces.push_back(std::move(i));
    }
    return n;
}

namespace {

std::string describe_interfaces(const std::vector<net::Interface>& interfaces) {
    std::vector<std::string> parts;
    for (const auto& i : interfaces)
        parts.push_back(i.gateway ? fmt::format("{} {} via {}", i.name, i.address.str(), i.gateway->str())
                                  : fmt::format("{} {}", i.name, i.address.str()));
    return fmt::format("{}", fmt::join(parts, ", "));
}

}  // namespace

std::string describe(const net::ContainerNetwork& n) { return describe_interfaces(n.interfaces); }

std::string describe_network(const config::Config& c, const config::Container& ct) {
    return describe_interfaces(interfaces_of(c, ct));
}

Change ensure_network_addresses(const config::Config& c, const config::Container& ct, pid_t leader) {
    return with_context(fmt::format("network namespace of pid {}", leader), [&] {
        net::Netlink inside = net::Netlink::open_in_netns_of(leader);
        return net::ensure_addresses(inside, interfaces_of(c, ct));
    });
}

std::optional<std::pair<std::string, std::string>> network_differs(const StateDir& state,
                                                                   const config::Config& c,
                                                                   const config::Container& ct) {
    std::optional<NetworkRecord> r;
    try {
        r = load_network_record(state, ct.name);
    } catch (const Error&) {
        return std::nullopt;
    }
    if (!r) return std::nullopt;  // started by an older aplspawn: its IP is compared elsewhere
    std::vector<std::string> have, want;
    for (const auto& l : r->links) have.push_back(fmt::format("{} {}", l.interface, l.address));
    for (const auto& i : interfaces_of(c, ct)) want.push_back(fmt::format("{} {}", i.name, i.address.str()));
    if (have == want) return std::nullopt;
    return std::pair{fmt::format("{}", fmt::join(have, ", ")), fmt::format("{}", fmt::join(want, ", "))};
}

NetworkResult create_network(const config::Config& c, const config::Container& ct, const StateDir& state) {
    return with_context(fmt::format("network of {}", ct.name), [&] {
        NetworkResult result;
        net::Netlink host = net::Netlink::open();
        auto recorded = load_network_record(state, ct.name);
        if (recorded) {
            // An interrupted run's: whatever of it exists goes first.
            std::vector<net::HostEnd> ends;
            for (const auto& l : recorded->links) ends.push_back({l.host, l.alias});
            net::Teardown t = net::remove_container_network(host, recorded->netns, ends);
            result.taken_down = t.change;
            result.notes = std::move(t.notes);
        }
        result.network = wanted_network(c, ct, state, host, recorded);
        // A name the record does not name is someone else's: never ours to replace.
        if (sys::netns_exists(result.network.netns) && !(recorded && recorded->netns == result.network.netns))
            throw Error(fmt::format("network namespace {} exists and is not one this fleet made (no "
                                    "record of it in {}): another fleet with a container {}? Remove it "
                                    "(ip netns delete {}) if it is a leftover",
                                    sys::netns_path(result.network.netns).string(),
                                    record_path(state, ct.name).parent_path().string(), ct.name,
                                    result.network.netns));
        save_record(state, ct.name, record_of(result.network));
        net::create_container_network(host, result.network);
        return result;
    });
}

net::Teardown remove_network(const StateDir& state, const std::string& name) {
    return with_context(fmt::format("remove the network of {}", name), [&] {
        auto recorded = load_network_record(state, name);
        if (!recorded) return net::Teardown{};
        net::Netlink host = net::Netlink::open();
        std::vector<net::HostEnd> ends;
        for (const auto& l : recorded->links) ends.push_back({l.host, l.alias});
        net::Teardown t = net::remove_container_network(host, recorded->netns, ends);
        remove_record(state, name);
        t.change = Change::changed;  // at least the record went
        return t;
    });
}

}  // namespace aplspawn::fleet
