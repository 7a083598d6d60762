// What each container gets, derived from the config alone (pure functions): the provisioning
// spec, the launch spec (start mode, binds and environment of script mode) and the original's
// variables file.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/fleet/launch.hpp"
#include "aplspawn/fleet/overlay.hpp"
#include "aplspawn/fleet/provision.hpp"
#include "aplspawn/fleet/state.hpp"

#include <string>
#include <string_view>

namespace aplspawn::fleet {

// Every container of the fleet (all groups) by name, for each container's /etc/hosts.
std::vector<HostEntry> fleet_hosts(const config::Config& c);

// authorized_key: the public key line of the container's group (read_public_key).
ProvisionSpec provision_spec(const config::Config& c, const config::Container& ct,
                             const std::string& authorized_key);

// Boot mode: systemd-nspawn --boot. Script mode (cntCommon.startupScript set): the script as
// PID 1, bindHost bound read-only at bindContainer, and the original's --setenv variables
// ipaddress=IP and cName=NAME. Either mode: the group's binds.
LaunchSpec launch_spec(const config::Container& ct, const ContainerDirs& dirs, const StateDir& state);

// Script mode's variables file (cntCommon.variablesFile), as the original wrote it: one
// KEY="value" line per cntVariables key, sshPublicKeyPath holding the key itself ("TYPE BASE64",
// as the original's startup.sh expects). userPassword and rootPassword are not written:
// provisioning sets them, hashed.
std::string variables_file_text(const config::Group& g, std::string_view public_key);

// A value for KEY="value" in a file sourced by sh: ", \, $ and ` escaped; newlines refused.
std::string sh_double_quoted(std::string_view value);

}  // namespace aplspawn::fleet
