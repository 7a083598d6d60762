#include "config/validate.hpp"

#include <fmt/format.h>

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

void check_bridge(const Config& c, const YamlReader& r) {
    if (!is_valid_link_name(c.bridge.name))
        r.fail("bridge.name",
               c.bridge.name.size() > 15
                   ? fmt::format("{} is longer than 15 bytes (the kernel's limit for link names)",
                                 quote(c.bridge.name))
                   : fmt::format("{} is not a valid link name (1-15 bytes, no '/', ':' or spaces)",
                                 quote(c.bridge.name)));
    if (!c.bridge.subnet.is_host(c.bridge.address))
        r.fail("bridge.address",
               fmt::format("{} is the {} address of {}, not a host address",
                           c.bridge.address.str(),
                           c.bridge.address == c.bridge.subnet.network ? "network" : "broadcast",
                           c.bridge.subnet.str()));
}

void check_vars(const Config& c, const YamlReader& r) {
    const auto& v = c.vars;
    if (!is_valid_user_name(v.user_name))
        r.fail("cntVariables.userName",
               fmt::format("{} is not a valid user name (lower-case letters, digits, '_', '-'; "
                           "at most 32)",
                           quote(v.user_name)));
    if (v.user_name == "root")
        r.fail("cntVariables.userName",
               "'root' cannot be the fleet's user: aplspawn creates this user in each container");
    if (!is_valid_user_name(v.user_group))
        r.fail("cntVariables.userGroup",
               fmt::format("{} is not a valid group name", quote(v.user_group)));
    if (v.prefix != c.bridge.prefix)
        r.fail("cntVariables.netPrefix",
               fmt::format("{} differs from bridge.netPrefix {}: containers live in the bridge's "
                           "subnet {}",
                           v.prefix, c.bridge.prefix, c.bridge.subnet.str()));
    if (!c.bridge.subnet.is_host(v.gateway))
        r.fail("cntVariables.defGateway",
               fmt::format("{} is outside the bridge subnet {}", v.gateway.str(),
                           c.bridge.subnet.str()));
}

void check_range(Config& c, const YamlReader& r) {
    const auto& k = c.common;
    const Subnet& net = c.bridge.subnet;
    const std::string key = "cntCommon.ipRange";
    std::string shown = fmt::format("[{}, {})", k.range_begin.str(), k.range_end.str());
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
    if (inside(c.vars.gateway))
        r.fail(key, fmt::format("{} contains the gateway cntVariables.defGateway {}", shown,
                                c.vars.gateway.str()));
    std::uint32_t size = k.range_end.value - k.range_begin.value;
    if (static_cast<std::uint32_t>(k.amount) > size)
        r.fail("cntCommon.amount", fmt::format("{} containers do not fit ipRange {} ({} addresses)",
                                               k.amount, shown, size));
}

void check_names(Config& c, const YamlReader& r) {
    std::set<std::string> seen;
    for (Ipv4 ip : fleet_addresses(c.common.range_begin, c.common.range_end, c.common.amount)) {
        std::string name = c.common.name_template + std::to_string(ip.last_octet());
        if (!is_valid_machine_name(name))
            r.fail("cntCommon.nameTmpl",
                   fmt::format("{} makes container name {}, which systemd does not accept as a "
                               "machine name (letters, digits, '-', '.'; at most 64)",
                               quote(c.common.name_template), quote(name)));
        if (!seen.insert(name).second)
            r.fail("cntCommon.amount",
                   fmt::format("{} containers from {} repeat the name {}: names use the last "
                               "octet, so at most 256 consecutive addresses",
                               c.common.amount, c.common.range_begin.str(), quote(name)));
        c.fleet.push_back({std::move(name), ip});
    }
}

void check_script_mode(const Config& c, const YamlReader& r) {
    const auto& k = c.common;
    for (auto [key, value] : {std::pair{"cntCommon.startupScript", &k.startup_script},
                              std::pair{"cntCommon.bindContainer", &k.bind_container}})
        if (!value->empty() && (*value)[0] != '/')
            r.fail(key, fmt::format("{} must be an absolute path inside the container",
                                    quote(*value)));
    if (k.mode() == StartMode::script && !k.bind_host.empty() && k.bind_container.empty())
        r.fail("cntCommon.bindContainer",
               "missing: cntCommon.bindHost is set, so it needs a place in the container");
    if (!k.bind_container.empty() && k.bind_host.empty())
        r.fail("cntCommon.bindHost", "missing: cntCommon.bindContainer is set without it");
}

void check_paths(const Config& c, const YamlReader& r) {
    const std::pair<const char*, const fs::path*> dirs[] = {
        {"path.workingDirectory", &c.paths.working_dir}, {"path.localStore", &c.paths.local_store},
        {"path.imageLowerLayer", &c.paths.lower},        {"path.imageUpperPath", &c.paths.upper},
        {"path.imageWorkPath", &c.paths.work},           {"path.stateDirectory", &c.paths.state},
        {"cntCommon.homePath", &c.common.home_path},
    };
    for (const auto& [key, p] : dirs)
        if (*p == "/" || p->empty())
            r.fail(key, fmt::format("{} cannot be used as a directory of the fleet", quote(p->string())));
    // Every directory but workingDirectory (their default parent) must be distinct.
    for (size_t i = 1; i < std::size(dirs); ++i)
        for (size_t j = i + 1; j < std::size(dirs); ++j)
            if (*dirs[i].second == *dirs[j].second)
                r.fail(dirs[j].first, fmt::format("{} is also {}: each needs its own directory",
                                                  quote(dirs[j].second->string()), dirs[i].first));
}

}  // namespace

void validate(Config& c, const YamlReader& r) {
    check_bridge(c, r);
    check_vars(c, r);
    check_paths(c, r);
    check_range(c, r);
    check_script_mode(c, r);
    check_names(c, r);
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

bool is_valid_user_name(std::string_view name) {
    if (name.empty() || name.size() > 32) return false;
    if (!(std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
    for (char c : name)
        if (!(std::islower(static_cast<unsigned char>(c)) ||
              std::isdigit(static_cast<unsigned char>(c)) || c == '_' || c == '-'))
            return false;
    return true;
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
