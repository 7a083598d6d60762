// hosts and fabric (new): a fleet spread over several machines. Read after the bridge and the
// networks (a host's addresses derive from theirs) and before the groups (each group routes
// through its host's address); checked against the containers once they are known.
#include "config/hosts.hpp"

#include "aplspawn/error.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>

namespace aplspawn::config {
namespace {

// A name Ansible takes as an inventory hostname and people type after --host: a letter or digit,
// then letters, digits, '.', '_', '-'; at most 64.
bool is_valid_host_name(std::string_view name) {
    if (name.empty() || name.size() > 64 || !std::isalnum(static_cast<unsigned char>(name[0]))) return false;
    return std::all_of(name.begin(), name.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-';
    });
}

std::vector<std::string> host_names(const Config& c) {
    std::vector<std::string> out;
    for (const auto& h : c.hosts) out.push_back(h->name);
    return out;
}

constexpr std::uint32_t kMaxVni = (1u << 24) - 1;

}  // namespace

void read_hosts(const YamlReader& r, Config& c) {
    if (r.node("fabric") && !r.node("hosts"))
        r.fail("fabric", "joins the bridges of the fleet's hosts: it needs a hosts section");
    if (!r.node("hosts")) return;
    auto node = r.node("hosts");
    if (node->IsNull() || !node->IsMap() || node->size() == 0)
        r.fail("hosts", "must be a mapping of at least one host (NAME: {address: ..., groups: [...]})");
    // The groups' names (a file without groups: its one implicit group).
    std::vector<std::string> groups = r.node("groups") ? r.keys("groups") : std::vector<std::string>{std::string(kFleetGroup)};
    int index = 0;
    for (const auto& name : r.keys("hosts")) {
        const std::string k = "hosts." + name;
        if (!is_valid_host_name(name))
            r.fail(k, fmt::format("{} is not a host name (letters, digits, '.', '_', '-', starting "
                                  "with a letter or digit; at most 64)",
                                  quote(name)));
        r.mapping(k, true);
        Host h;
        h.name = name;
        auto text = *r.string(k + ".address", true);
        auto ip = Ipv4::parse(text);
        if (!ip) r.fail(k + ".address", fmt::format("{} is not an IPv4 address", quote(text)));
        h.address = *ip;
        h.groups = *r.string_list(k + ".groups", true);
        for (std::size_t i = 0; i < h.groups.size(); ++i) {
            if (std::count(h.groups.begin(), h.groups.begin() + static_cast<long>(i), h.groups[i]))
                r.fail(k + ".groups", fmt::format("{} is named twice", quote(h.groups[i])));
            if (std::find(groups.begin(), groups.end(), h.groups[i]) == groups.end())
                r.fail(k + ".groups", fmt::format("unknown group {} (the file's groups: {})", quote(h.groups[i]),
                                                  fmt::join(groups, ", ")));
        }
        for (const auto& other : c.hosts)
            if (other->address == h.address)
                r.fail(k + ".address", fmt::format("{} is also host {}'s address ({}): each host needs its own",
                                                   h.address.str(), other->name,
                                                   r.place("hosts." + other->name + ".address")));
        h.index = index++;
        h.gateway = Ipv4{c.bridge.address.value + static_cast<std::uint32_t>(h.index)};
        c.hosts.push_back(std::make_shared<const Host>(std::move(h)));
    }
    if (auto id = r.integer("fabric.vxlanId", false)) {
        const long long top = kMaxVni - static_cast<long long>(c.networks.size());
        if (*id < 1 || *id > top)
            r.fail("fabric.vxlanId",
                   fmt::format("{} is out of range 1..{} (a VXLAN id has 24 bits{})", *id, top,
                               c.networks.empty() ? "" : "; each network takes the next one"));
        c.fabric.vxlan_id = static_cast<std::uint32_t>(*id);
    }
    if (auto port = r.integer("fabric.port", false)) {
        if (*port < 1 || *port > 65535)
            r.fail("fabric.port", fmt::format("{} is out of range 1..65535", *port));
        c.fabric.port = static_cast<int>(*port);
    }
}

void place_group(const YamlReader& r, const Config& c, Group& g) {
    if (!c.multi_host()) return;
    const Host* on = nullptr;
    for (const auto& h : c.hosts) {
        if (std::find(h->groups.begin(), h->groups.end(), g.name) == h->groups.end()) continue;
        if (on)
            r.fail("hosts." + h->name + ".groups",
                   fmt::format("group {} is placed on host {} too ({}): a group runs on one host",
                               g.name, on->name, r.place("hosts." + on->name + ".groups")));
        on = h.get();
    }
    if (!on)
        r.fail(g.implicit ? std::string("hosts") : "groups." + g.name,
               fmt::format("group {} is placed on no host: name it in the groups of one of {}", g.name,
                           fmt::join(host_names(c), ", ")));
    // Its containers leave through their own host: the default gateway is that host's address.
    if (auto it = g.origins.find("defGateway"); it != g.origins.end() && g.vars.gateway != c.bridge.address)
        r.fail(it->second, fmt::format("{}: with hosts, each container routes through its own host's "
                                       "address on the bridge ({} for host {}): leave defGateway out",
                                       g.vars.gateway.str(), on->gateway.str(), on->name));
    g.vars.gateway = on->gateway;
}

void check_hosts(const Config& c, const YamlReader& r) {
    for (const auto& h : c.hosts) {
        const std::string k = "hosts." + h->name;
        auto inside = [&](Ipv4 ip, const Subnet& subnet, const std::string& what) {
            if (!subnet.is_host(ip))
                r.fail(k, fmt::format("host {} (host {} of the file) would have {} on {}, which is not a "
                                      "host address of {}: use a lower address or a larger subnet",
                                      h->name, h->index + 1, ip.str(), what, subnet.str()));
            if (h->address == ip)
                r.fail(k + ".address", fmt::format("{} is also the host's own address on {}", ip.str(), what));
        };
        inside(h->gateway, c.bridge.subnet, "the fleet's bridge " + c.bridge.name);
        for (const auto& n : c.networks) inside(h->address_on(*n), n->subnet, "network " + n->name);
    }
}

void check_host_addresses(const Config& c, const YamlReader& r) {
    for (const auto& h : c.hosts)
        for (const auto& ct : c.fleet) {
            if (ct.ip == h->gateway)
                r.fail(ct.group->origin("ipRange"),
                       fmt::format("{} gives container {} the address {}, which is host {}'s on the bridge "
                                   "(bridge.address + {}: each host has its own): start the range higher",
                                   quote(fmt::format("[{}, {})", ct.common().range_begin.str(),
                                                     ct.common().range_end.str())),
                                   ct.name, ct.ip.str(), h->name, h->index));
            for (const auto& a : ct.networks)
                if (a.ip == h->address_on(*a.network))
                    r.fail(ct.group->origin("networks") + "." + a.network->name,
                           fmt::format("gives container {} the address {} on network {}, which is host "
                                       "{}'s there (its address + {})",
                                       ct.name, a.ip.str(), a.network->name, h->name, h->index));
        }
}

const Host* Config::find_host(std::string_view name) const {
    for (const auto& h : hosts)
        if (h->name == name) return h.get();
    return nullptr;
}

const Host* Config::host_of(const Group& g) const {
    for (const auto& h : hosts)
        if (std::find(h->groups.begin(), h->groups.end(), g.name) != h->groups.end()) return h.get();
    return nullptr;
}

bool Config::is_local(const Container& ct) const {
    if (!multi_host()) return true;
    return local && host_of(*ct.group) == local.get();
}

void place_on_host(Config& c, const std::string& name, const std::vector<Ipv4>& own_addresses, bool required) {
    const std::string file = c.file.filename().string();
    if (!c.multi_host()) {
        if (!name.empty())
            throw Error::usage(fmt::format("--host {}: {} has no hosts section (the fleet runs on one machine)",
                                           name, file));
        return;
    }
    if (!name.empty()) {
        for (const auto& h : c.hosts)
            if (h->name == name) c.local = h;
        if (!c.local)
            throw Error::usage(fmt::format("--host {}: {} has no host of that name (hosts: {})", name, file,
                                           fmt::join(host_names(c), ", ")));
        return;
    }
    std::vector<std::shared_ptr<const Host>> mine;
    for (const auto& h : c.hosts)
        if (std::find(own_addresses.begin(), own_addresses.end(), h->address) != own_addresses.end())
            mine.push_back(h);
    if (mine.size() > 1)
        throw Error::usage(fmt::format("this machine has the addresses of hosts {} and {} of {}: give --host NAME",
                                       mine[0]->name, mine[1]->name, file));
    if (mine.size() == 1) {
        c.local = mine.front();
        return;
    }
    if (required) {
        std::vector<std::string> listed;
        for (const auto& h : c.hosts) listed.push_back(fmt::format("{} {}", h->name, h->address.str()));
        throw Error::usage(fmt::format("this machine is none of {}'s hosts ({}): give --host NAME", file,
                                       fmt::join(listed, ", ")));
    }
}

}  // namespace aplspawn::config
