#include "config/validate.hpp"

#include "config/hosts.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <set>

namespace aplspawn::config {
namespace {

bool is_valid_link_name(std::string_view name) {
    if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
    for (char c : name)
        if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c)) ||
            static_cast<unsigned char>(c) < 0x20)
            return false;
    return true;
}

std::string link_name_problem(const std::string& name) {
    return name.size() > 15
               ? fmt::format("{} is longer than 15 bytes (the kernel's limit for link names)",
                             quote(name))
               : fmt::format("{} is not a valid link name (1-15 bytes, no '/', ':' or spaces)",
                             quote(name));
}

std::string range_text(const Common& k) {
    return fmt::format("[{}, {})", k.range_begin.str(), k.range_end.str());
}

void check_bridge(const Config& c, const YamlReader& r) {
    if (!is_valid_link_name(c.bridge.name)) r.fail("bridge.name", link_name_problem(c.bridge.name));
    if (!c.bridge.subnet.is_host(c.bridge.address))
        r.fail("bridge.address",
               fmt::format("{} is the {} address of {}, not a host address",
                           c.bridge.address.str(),
                           c.bridge.address == c.bridge.subnet.network ? "network" : "broadcast",
                           c.bridge.subnet.str()));
}

bool overlaps(const Subnet& a, const Subnet& b) {
    return a.contains(b.network) || b.contains(a.network);
}

// The networks besides the bridge: each its own bridge and subnet, the host's address a host
// address of it.
void check_networks(const Config& c, const YamlReader& r) {
    for (size_t i = 0; i < c.networks.size(); ++i) {
        const Network& n = *c.networks[i];
        const std::string k = "networks." + n.name;
        if (!is_valid_link_name(n.bridge)) r.fail(k + ".bridge", link_name_problem(n.bridge));
        if (!n.subnet.is_host(n.address))
            r.fail(k + ".address",
                   fmt::format("{} is the {} address of {}, not a host address", n.address.str(),
                               n.address == n.subnet.network ? "network" : "broadcast",
                               n.subnet.str()));
        if (n.bridge == c.bridge.name)
            r.fail(k + ".bridge", fmt::format("{} is the fleet's bridge (bridge.name, {}): each "
                                              "network needs a bridge of its own",
                                              quote(n.bridge), r.place("bridge.name")));
        if (overlaps(n.subnet, c.bridge.subnet))
            r.fail(k + ".address",
                   fmt::format("{} overlaps the fleet's bridge subnet {} ({})", n.subnet.str(),
                               c.bridge.subnet.str(), r.place("bridge.address")));
        for (size_t j = 0; j < i; ++j) {
            const Network& o = *c.networks[j];
            const std::string ok = "networks." + o.name;
            if (n.bridge == o.bridge)
                r.fail(k + ".bridge", fmt::format("{} is also network {}'s bridge ({}): each "
                                                  "network needs a bridge of its own",
                                                  quote(n.bridge), o.name, r.place(ok + ".bridge")));
            if (overlaps(n.subnet, o.subnet))
                r.fail(k + ".address", fmt::format("{} overlaps network {}'s subnet {} ({})",
                                                   n.subnet.str(), o.name, o.subnet.str(),
                                                   r.place(ok + ".address")));
        }
    }
}

std::string range_text(Ipv4 begin, Ipv4 end) {
    return fmt::format("[{}, {})", begin.str(), end.str());
}

// A group's range on each of its networks: inside the network's subnet, clear of the host's
// address, big enough for the group.
void check_network_ranges(const Group& g, const YamlReader& r) {
    for (const auto& nr : g.networks) {
        const Network& n = *nr.network;
        const std::string shown = range_text(nr.begin, nr.end);
        if (nr.end <= nr.begin)
            r.fail(nr.key, fmt::format("{} is {}: the first address must be lower than the end "
                                       "(the end is exclusive)",
                                       shown, nr.end == nr.begin ? "empty" : "reversed"));
        Ipv4 last{nr.end.value - 1};
        for (Ipv4 ip : {nr.begin, last})
            if (!n.subnet.is_host(ip))
                r.fail(nr.key, fmt::format("{} leaves network {}'s subnet {}: {} is {}", shown,
                                           n.name, n.subnet.str(), ip.str(),
                                           !n.subnet.contains(ip)  ? "outside it"
                                           : ip == n.subnet.network ? "its network address"
                                                                    : "its broadcast address"));
        if (nr.begin <= n.address && n.address < nr.end)
            r.fail(nr.key, fmt::format("{} contains the host's address {} on network {} ({})",
                                       shown, n.address.str(), n.name,
                                       r.place("networks." + n.name + ".address")));
        std::uint32_t size = nr.end.value - nr.begin.value;
        if (static_cast<std::uint32_t>(g.common.amount) > size)
            r.fail(nr.key, fmt::format("{} has {} addresses on network {}, too few for the "
                                       "group's {} containers ({})",
                                       shown, size, n.name, g.common.amount,
                                       r.place(g.origin("amount"))));
    }
}

void check_vars(const Config& c, const Group& g, const YamlReader& r) {
    const auto& v = g.vars;
    if (!is_valid_user_name(v.user_name))
        r.fail(g.origin("userName"),
               fmt::format("{} is not a valid user name (lower-case letters, digits, '_', '-'; "
                           "at most 32)",
                           quote(v.user_name)));
    if (v.user_name == "root")
        r.fail(g.origin("userName"),
               "'root' cannot be the fleet's user: aplspawn creates this user in each container");
    if (!is_valid_user_name(v.user_group))
        r.fail(g.origin("userGroup"), fmt::format("{} is not a valid group name", quote(v.user_group)));
    if (v.prefix != c.bridge.prefix)
        r.fail(g.origin("netPrefix"),
               fmt::format("{} differs from bridge.netPrefix {}: containers live in the bridge's "
                           "subnet {}",
                           v.prefix, c.bridge.prefix, c.bridge.subnet.str()));
    if (!c.bridge.subnet.is_host(v.gateway))
        r.fail(g.origin("defGateway"),
               fmt::format("{} is outside the bridge subnet {}", v.gateway.str(),
                           c.bridge.subnet.str()));
}

void check_range(const Config& c, const Group& g, const YamlReader& r) {
    const auto& k = g.common;
    const Subnet& net = c.bridge.subnet;
    const std::string key = g.origin("ipRange");
    std::string shown = range_text(k);
    if (k.range_end <= k.range_begin)
        r.fail(key, fmt::format("{} is {}: the first address must be lower than the end "
                                "(the end is exclusive)",
                                shown, k.range_end == k.range_begin ? "empty" : "reversed"));
    Ipv4 last{k.range_end.value - 1};
    for (Ipv4 ip : {k.range_begin, last})
        if (!net.is_host(ip))
            r.fail(key, fmt::format("{} leaves the bridge subnet {}: {} is {}", shown, net.str(),
                                    ip.str(),
                                    !net.contains(ip) ? "outside it"
                                    : ip == net.network ? "its network address"
                                                        : "its broadcast address"));
    auto inside = [&](Ipv4 ip) { return k.range_begin <= ip && ip < k.range_end; };
    if (inside(c.bridge.address))
        r.fail(key, fmt::format("{} contains the bridge address {}", shown, c.bridge.address.str()));
    if (!c.multi_host() && inside(g.vars.gateway))  // with hosts: check_host_addresses
        r.fail(key, fmt::format("{} contains the gateway cntVariables.defGateway {}", shown,
                                g.vars.gateway.str()));
    std::uint32_t size = k.range_end.value - k.range_begin.value;
    if (static_cast<std::uint32_t>(k.amount) > size)
        r.fail(g.origin("amount"), fmt::format("{} containers do not fit ipRange {} ({} addresses)",
                                               k.amount, shown, size));
}

void check_script_mode(const Group& g, const YamlReader& r) {
    const auto& k = g.common;
    for (auto [key, value] : {std::pair{"startupScript", &k.startup_script},
                              std::pair{"bindContainer", &k.bind_container}})
        if (!value->empty() && (*value)[0] != '/')
            r.fail(g.origin(key), fmt::format("{} must be an absolute path inside the container",
                                              quote(*value)));
    if (k.mode() == StartMode::script && !k.bind_host.empty() && k.bind_container.empty())
        r.fail(g.origin("bindContainer"),
               "missing: cntCommon.bindHost is set, so it needs a place in the container");
    if (!k.bind_container.empty() && k.bind_host.empty())
        r.fail(g.origin("bindHost"), "missing: cntCommon.bindContainer is set without it");
}

void check_paths(const Config& c, const YamlReader& r) {
    std::vector<std::pair<std::string, const fs::path*>> dirs = {
        {"path.workingDirectory", &c.paths.working_dir}, {"path.localStore", &c.paths.local_store},
        {"path.imageLowerLayer", &c.paths.lower},        {"path.imageUpperPath", &c.paths.upper},
        {"path.imageWorkPath", &c.paths.work},           {"path.stateDirectory", &c.paths.state},
    };
    // Each distinct homePath of the groups (groups may share one: container names are unique).
    std::set<fs::path> homes;
    for (const auto& g : c.groups)
        if (homes.insert(g->common.home_path).second)
            dirs.push_back({g->origin("homePath"), &g->common.home_path});
    for (const auto& [key, p] : dirs)
        if (*p == "/" || p->empty())
            r.fail(key, fmt::format("{} cannot be used as a directory of the fleet", quote(p->string())));
    // Every directory but workingDirectory (their default parent) must be distinct.
    for (size_t i = 1; i < dirs.size(); ++i)
        for (size_t j = i + 1; j < dirs.size(); ++j)
            if (*dirs[i].second == *dirs[j].second)
                r.fail(dirs[j].first, fmt::format("{} is also {}: each needs its own directory",
                                                  quote(dirs[j].second->string()), dirs[i].first));
}

// The containers of one group: the first `amount` addresses of its range, named after them.
void add_containers(Config& c, const std::shared_ptr<const Group>& g, const YamlReader& r) {
    std::set<std::string> seen;
    int index = 0;
    for (Ipv4 ip : fleet_addresses(g->common.range_begin, g->common.range_end, g->common.amount)) {
        std::string name = g->common.name_template + std::to_string(ip.last_octet());
        if (!is_valid_machine_name(name))
            r.fail(g->origin("nameTmpl"),
                   fmt::format("{} makes container name {}, which systemd does not accept as a "
                               "machine name (letters, digits, '-', '.'; at most 64)",
                               quote(g->common.name_template), quote(name)));
        if (!seen.insert(name).second)
            r.fail(g->origin("amount"),
                   fmt::format("{} containers from {} repeat the name {}: names use the last "
                               "octet, so at most 256 consecutive addresses",
                               g->common.amount, g->common.range_begin.str(), quote(name)));
        std::vector<Attachment> networks;
        for (const auto& nr : g->networks)
            networks.push_back({nr.network, Ipv4{nr.begin.value + static_cast<std::uint32_t>(index)}});
        c.fleet.push_back({std::move(name), ip, g, index++, std::move(networks)});
    }
}

// The key that makes a group's image what it is: the first the group sets itself, else the
// first it inherits.
std::string image_key(const Group& g) {
    const std::string own = "groups." + g.name + ".";
    const char* keys[] = {"url", "repo", "release", "os", "sha256"};
    for (bool own_only : {true, false})
        for (const char* k : keys) {
            auto it = g.origins.find(std::string("image.") + k);
            if (it != g.origins.end() && (!own_only || it->second.starts_with(own))) return it->second;
        }
    return g.origin("image.url");
}

// Rules between groups: ranges, names, images and files they would share.
void check_between_groups(const Config& c, const YamlReader& r) {
    for (size_t i = 0; i < c.groups.size(); ++i)
        for (size_t j = i + 1; j < c.groups.size(); ++j) {
            const Group& a = *c.groups[i];
            const Group& b = *c.groups[j];
            const Common& ka = a.common;
            const Common& kb = b.common;
            if (ka.range_begin < kb.range_end && kb.range_begin < ka.range_end)
                r.fail(b.origin("ipRange"),
                       fmt::format("{} overlaps {} {} ({})", range_text(kb), a.origin("ipRange"),
                                   range_text(ka), r.place(a.origin("ipRange"))));
            for (const auto& na : a.networks)
                for (const auto& nb : b.networks)
                    if (na.network == nb.network && na.begin < nb.end && nb.begin < na.end)
                        r.fail(nb.key, fmt::format("{} overlaps {} {} ({}): two containers would "
                                                   "have one address on network {}",
                                                   range_text(nb.begin, nb.end), na.key,
                                                   range_text(na.begin, na.end), r.place(na.key),
                                                   na.network->name));
            if (a.image.file_name == b.image.file_name &&
                (a.image.url != b.image.url || a.image.sha256 != b.image.sha256))
                r.fail(image_key(b),
                       fmt::format("the image {} would be stored as {}, like group {}'s {} ({}): "
                                   "images of one name must be the same image",
                                   quote(b.image.url), a.image.file_name, a.name,
                                   quote(a.image.url), r.place(image_key(a))));
            const fs::path& pa = ka.ssh_private_key;
            const fs::path& qa = a.vars.ssh_public_key;
            if ((pa == kb.ssh_private_key) != (qa == b.vars.ssh_public_key)) {
                bool same_private = pa == kb.ssh_private_key;
                std::string key = same_private ? "sshPublicKeyPath" : "sshPrivateKeyPath";
                r.fail(b.origin(key),
                       fmt::format("group {} pairs private key {} with public key {} ({}): a key "
                                   "pair is one private and one public key",
                                   a.name, quote(pa.string()), quote(qa.string()),
                                   r.place(a.origin(key))));
            }
            const fs::path& va = ka.variables_file;
            if (!va.empty() && va == kb.variables_file && !(a.vars == b.vars))
                r.fail(b.origin("variablesFile"),
                       fmt::format("{} is also group {}'s variables file ({}), with other "
                                   "cntVariables: give each group its own",
                                   quote(va.string()), a.name, r.place(a.origin("variablesFile"))));
        }
    // Container names are unique fleet-wide, and no group has a container's name (targets name
    // either).
    for (size_t i = 0; i < c.fleet.size(); ++i) {
        const Container& x = c.fleet[i];
        for (size_t j = i + 1; j < c.fleet.size(); ++j) {
            const Container& y = c.fleet[j];
            if (x.name == y.name)
                r.fail(y.group->origin("nameTmpl"),
                       fmt::format("group {} makes container {}, which group {} makes too ({})",
                                   y.group->name, quote(y.name), x.group->name,
                                   r.place(x.group->origin("nameTmpl"))));
        }
        if (const Group* g = c.find_group(x.name); g && c.has_groups())
            r.fail(x.group->origin("nameTmpl"),
                   fmt::format("container {} of group {} has the name of group {} ({}): targets "
                               "would be ambiguous",
                               quote(x.name), x.group->name, g->name,
                               r.place("groups." + g->name)));
    }
}

}  // namespace

void validate(Config& c, const YamlReader& r) {
    check_bridge(c, r);
    check_networks(c, r);
    check_hosts(c, r);
    for (const auto& g : c.groups) check_vars(c, *g, r);
    check_paths(c, r);
    for (const auto& g : c.groups) {
        check_range(c, *g, r);
        check_network_ranges(*g, r);
        check_script_mode(*g, r);
    }
    for (const auto& g : c.groups) add_containers(c, g, r);
    check_between_groups(c, r);
    check_host_addresses(c, r);
}

std::vector<Ipv4> fleet_addresses(Ipv4 begin, Ipv4 end, int amount) {
    std::vector<Ipv4> out;
    for (std::uint32_t v = begin.value; v < end.value && out.size() < static_cast<size_t>(amount);
         ++v)
        out.push_back(Ipv4{v});
    return out;
}

const std::vector<std::string>& known_host_key_types() {
    static const std::vector<std::string> types{"ed25519", "ecdsa", "rsa"};
    return types;
}

std::vector<std::string> default_host_key_types() { return {"ed25519", "ecdsa"}; }

bool is_valid_image_name(std::string_view name) {
    if (name.empty() || name.size() > 64 || !std::isalnum(static_cast<unsigned char>(name[0])))
        return false;
    if (name.ends_with(".img")) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    });
}

bool is_valid_user_name(std::string_view name) {
    if (name.empty() || name.size() > 32) return false;
    if (!(std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
    for (char c : name)
        if (!(std::islower(static_cast<unsigned char>(c)) ||
              std::isdigit(static_cast<unsigned char>(c)) || c == '_' || c == '-'))
            return false;
    return true;
}

bool is_valid_network_name(std::string_view name) {
    // Devices a new network namespace may hold from the start: loopback, the fleet's main
    // interface, and the fallback devices of tunnel modules loaded on the host.
    static constexpr std::string_view kTaken[] = {"lo",      "host0",   "sit0",     "tunl0",
                                                  "gre0",    "gretap0", "erspan0",  "ip_vti0",
                                                  "ip6_vti0", "ip6tnl0", "ip6gre0", "ip6erspan0"};
    if (name.empty() || name.size() > 15 || !std::islower(static_cast<unsigned char>(name[0])))
        return false;
    for (char ch : name)
        if (!std::islower(static_cast<unsigned char>(ch)) &&
            !std::isdigit(static_cast<unsigned char>(ch)) && ch != '_')
            return false;
    return std::find(std::begin(kTaken), std::end(kTaken), name) == std::end(kTaken);
}

bool is_valid_machine_name(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    size_t label_start = 0;
    for (size_t i = 0; i <= name.size(); ++i) {
        if (i == name.size() || name[i] == '.') {
            std::string_view label = name.substr(label_start, i - label_start);
            if (label.empty() || label.front() == '-' || label.back() == '-') return false;
            label_start = i + 1;
            continue;
        }
        char ch = name[i];
        if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-') return false;
    }
    return true;
}

}  // namespace aplspawn::config
