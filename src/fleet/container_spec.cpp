#include "aplspawn/fleet/container_spec.hpp"

#include "aplspawn/fleet/network.hpp"
#include "aplspawn/sys/netns.hpp"

#include <fmt/format.h>

namespace aplspawn::fleet {

std::vector<HostEntry> fleet_hosts(const config::Config& c) {
    std::vector<HostEntry> out;
    for (const auto& ct : c.fleet) out.push_back({ct.name, ct.ip});
    return out;
}

ProvisionSpec provision_spec(const config::Config& c, const config::Container& ct,
                             const std::string& authorized_key) {
    const auto& v = ct.vars();
    const auto& k = ct.common();
    ProvisionSpec s;
    s.hostname = ct.name;
    s.ip = ct.ip;
    s.prefix = v.prefix;
    s.gateway = v.gateway;
    s.user = v.user_name;
    s.group = v.user_group;
    s.user_password = v.user_password;
    s.root_password = v.root_password;
    s.authorized_key = authorized_key;
    s.dns = v.dns;
    s.host_resolv = k.bind_host_resolve;
    s.mode = k.mode();
    s.profile = k.boot_profile;
    s.host_key_types = k.host_key_types;
    s.fleet_hosts = fleet_hosts(c);
    for (const auto& a : ct.networks) s.networks.push_back({a.network->name, a.ip, a.network->prefix});
    return s;
}

LaunchSpec launch_spec(const config::Container& ct, const ContainerDirs& dirs, const StateDir& state) {
    const auto& k = ct.common();
    LaunchSpec s;
    s.name = ct.name;
    s.group = ct.group->name;
    s.root = dirs.merged;
    s.network_namespace = sys::netns_path(netns_name(ct.name));
    s.mode = k.mode();
    s.log_file = state.log_path(ct.name);
    s.image = ct.image().name;
    s.ip = ct.ip.str();
    for (const auto& b : ct.group->binds) s.binds.push_back({b.host, b.container, b.read_only});
    s.resources = ct.group->resources;
    if (s.mode == config::StartMode::script) {
        s.command = {k.startup_script};
        if (!k.bind_host.empty() && !k.bind_container.empty())
            s.binds.push_back({k.bind_host, k.bind_container, true});
        s.env = {{"ipaddress", ct.ip.str()}, {"cName", ct.name}};
    }
    return s;
}

std::string sh_double_quoted(std::string_view value) {
    std::string out = "\"";
    for (char ch : value) {
        if (ch == '\n' || ch == '\r' || ch == '\0')
            throw Error(fmt::format("variables file: a value holds a line break: {}", value));
        if (ch == '"' || ch == '\\' || ch == '$' || ch == '`') out.push_back('\\');
        out.push_back(ch);
    }
    out.push_back('"');
    return out;
}

std::string variables_file_text(const config::Group& g, std::string_view public_key) {
    const auto& v = g.vars;
    // The original wrote the key without its comment.
    std::string_view key = public_key;
    if (auto sp = key.find(' '); sp != std::string_view::npos)
        if (auto sp2 = key.find(' ', sp + 1); sp2 != std::string_view::npos) key = key.substr(0, sp2);
    std::string out = "# Written by aplspawn spawn from cntVariables; sourced by the startup script.\n";
    auto line = [&](std::string_view k, std::string_view value) {
        out += fmt::format("{}={}\n", k, sh_double_quoted(value));
    };
    line("userName", v.user_name);
    line("userGroup", v.user_group);
    line("dnsAddress", v.dns ? v.dns->str() : "");
    line("netPrefix", std::to_string(v.prefix));
    line("defGateway", v.gateway.str());
    line("sshPublicKeyPath", key);
    return out;
}

}  // namespace aplspawn::fleet
