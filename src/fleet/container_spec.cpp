#include "aplspawn/fleet/container_spec.hpp"

#include <fmt/format.h>

namespace aplspawn::fleet {

ProvisionSpec provision_spec(const config::Config& c, const config::Container& ct,
                             const std::string& authorized_key) {
    ProvisionSpec s;
    s.hostname = ct.name;
    s.ip = ct.ip;
    s.prefix = c.vars.prefix;
    s.gateway = c.vars.gateway;
    s.user = c.vars.user_name;
    s.group = c.vars.user_group;
    s.user_password = c.vars.user_password;
    s.root_password = c.vars.root_password;
    s.authorized_key = authorized_key;
    s.dns = c.vars.dns;
    s.host_resolv = c.common.bind_host_resolve;
    s.mode = c.common.mode();
    s.profile = c.common.boot_profile;
    s.host_key_types = c.common.host_key_types;
    return s;
}

LaunchSpec launch_spec(const config::Config& c, const config::Container& ct,
                       const ContainerDirs& dirs, const StateDir& state) {
    LaunchSpec s;
    s.name = ct.name;
    s.root = dirs.merged;
    s.bridge = c.bridge.name;
    s.mode = c.common.mode();
    s.log_file = state.log_path(ct.name);
    s.image = c.image.name;
    s.ip = ct.ip.str();
    if (s.mode == config::StartMode::script) {
        s.command = {c.common.startup_script};
        if (!c.common.bind_host.empty() && !c.common.bind_container.empty())
            s.binds.push_back({c.common.bind_host, c.common.bind_container, true});
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

std::string variables_file_text(const config::Config& c, std::string_view public_key) {
    // The original wrote the key without its comment.
    std::string_view key = public_key;
    if (auto sp = key.find(' '); sp != std::string_view::npos)
        if (auto sp2 = key.find(' ', sp + 1); sp2 != std::string_view::npos) key = key.substr(0, sp2);
    std::string out = "# Written by aplspawn spawn from cntVariables; sourced by the startup script.\n";
    auto line = [&](std::string_view k, std::string_view v) {
        out += fmt::format("{}={}\n", k, sh_double_quoted(v));
    };
    line("userName", c.vars.user_name);
    line("userGroup", c.vars.user_group);
    line("dnsAddress", c.vars.dns ? c.vars.dns->str() : "");
    line("netPrefix", std::to_string(c.vars.prefix));
    line("defGateway", c.vars.gateway.str());
    line("sshPublicKeyPath", key);
    return out;
}

}  // namespace aplspawn::fleet
