// The fleet as Ansible sees it: one host per container of the config (inventory_hostname = the
// container's name), with everything Ansible needs to reach it over SSH with its group's key and
// the fleet's own known_hosts (strict host key checking, no trust on first use). Without groups
// in the config, every host is in group "aplspawned" as in the original; with groups, each config
// group is an Ansible group (with its vars) and a child of "aplspawned". Built from the config
// alone: no root and no running fleet needed.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/error.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace aplspawn::inventory {

namespace fs = std::filesystem;

inline constexpr std::string_view kGroup = "aplspawned";

struct Host {
    std::string name;                // inventory_hostname: the container name
    std::string address;             // ansible_host
    std::string user;                // ansible_user
    std::string private_key;         // ansible_ssh_private_key_file (absolute)
    std::string ssh_common_args;     // ansible_ssh_common_args (ssh-level quoting already applied)
    std::string python_interpreter;  // ansible_python_interpreter; "" = not known (omitted)
    std::string group;               // its Ansible group (a config group, or "aplspawned")
    // aplspawn's facts about the host (aplspawn_group, aplspawn_image, and with a networks
    // section aplspawn_networks: {NETWORK: ADDRESS} of its interfaces besides host0, {} for none),
    // any JSON value.
    std::vector<std::pair<std::string, nlohmann::ordered_json>> facts;

    // The connection variables (strings) in a fixed order, without the empty ones.
    std::vector<std::pair<std::string, std::string>> vars() const;
    // Every host variable: the connection variables, then the facts.
    nlohmann::ordered_json all_vars() const;
};

struct Group {
    std::string name;
    nlohmann::ordered_json vars = nlohmann::ordered_json::object();  // group vars (a mapping)
};

struct Inventory {
    std::string group{kGroup};  // the fleet's group ("aplspawned")
    // The fleet group's vars: what makes Ansible fast on aplspawn's hosts (ansible_pipelining).
    // Group vars of the config's groups (children) override them, as Ansible orders group vars.
    nlohmann::ordered_json vars = nlohmann::ordered_json::object();
    // The config's groups, children of `group`; empty: the hosts are directly in `group`.
    std::vector<Group> children;
    std::vector<Host> hosts;  // fleet order

    const Host* find(std::string_view name) const;
    // The hosts of one group, in fleet order.
    std::vector<const Host*> hosts_of(std::string_view group) const;
};

// The inventory of the configured fleet. The python interpreter is known when the container's
// root (its merged overlay, else the image's lower layer) has an executable /usr/bin/python3,
// resolved inside that root; otherwise it is left out and Ansible discovers it.
//
// A fleet with hosts: every host's containers are listed (each with aplspawn_host). On a machine
// that is none of the hosts (c.local unset: the controller), each container is reached through
// its host (ssh ProxyJump to the host's address) unless `direct` (the controller routes to the
// fleet itself); the hosts themselves share the fleet's L2 segment and reach every container.
struct Options {
    fs::path known_hosts;  // the known_hosts file to check against; empty: the fleet's (STATE/known_hosts)
    bool direct = false;   // no ProxyJump
};
Inventory from_config(const config::Config& c, const Options& options = {});

// The interpreter for Ansible in root: fleet::kAnsiblePython when root holds it and
// /usr/bin/python3 as executable files, "/usr/bin/python3" when only that, else "" (symlinks
// resolved inside root, never escaping it). Missing or unreadable roots give "".
std::string python_in_root(const fs::path& root);

// The ssh options that make Ansible use the fleet's known_hosts with strict checking:
// -o UserKnownHostsFile=FILE -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes
// FILE is quoted for ssh's own option parser ("%" doubled, quoted when it has blanks or quotes)
// and the whole is split by Ansible with shlex: both levels are handled here.
std::string ssh_common_args(const fs::path& known_hosts);

// Writes the INI text to path atomically (temp file, fsync, rename). Change::unchanged when the
// file already held exactly this text.
Change write_file(const fs::path& path, std::string_view text);

}  // namespace aplspawn::inventory
