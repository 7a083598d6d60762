// Provisioning: everything a container needs written into its root before systemd-nspawn starts
// it — hostname, hosts entry, machine-id, the fleet's user with its SSH key and sudo, passwords,
// resolver, fresh SSH host keys, a networkd file that keeps host0's static address, and the
// boot profile's masked units. See docs/provision.md.
//
// Every path is resolved inside the root (sys::RootFs: openat2 RESOLVE_IN_ROOT), so a symlink in
// the image never leads a write, chown or chmod onto the host. Called on the merged overlay
// directory: writes land in the container's upper layer, the image is never touched.
// Idempotent: a second call with the same spec writes nothing, keeps the host keys and the
// machine-id, and adds no duplicate lines. Thread-safe for different roots.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/error.hpp"
#include "aplspawn/ipv4.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace aplspawn::fleet {

// A name for /etc/hosts: every container of the fleet is listed in every container's hosts file.
struct HostEntry {
    std::string name;
    Ipv4 ip;
    friend bool operator==(const HostEntry&, const HostEntry&) = default;
};

// An interface besides host0, on a network of the container's group.
struct ProvisionInterface {
    std::string name;  // the network's name
    Ipv4 ip;
    int prefix = 0;
    friend bool operator==(const ProvisionInterface&, const ProvisionInterface&) = default;
};

struct ProvisionSpec {
    std::string hostname;  // the container name
    Ipv4 ip;
    int prefix = 0;
    Ipv4 gateway;
    std::string user, group;
    std::string user_password, root_password;  // plain text from config; "" = none/unchanged
    std::string authorized_key;                // content of sshPublicKeyPath (one key a line)
    std::optional<Ipv4> dns;                   // cntVariables.dnsAddress
    bool host_resolv = false;  // cntCommon.bindHostResolve: use the host's resolver
    config::StartMode mode = config::StartMode::boot;
    config::BootProfile profile = config::BootProfile::full;
    // cntCommon.hostKeyTypes: the host keys generated, in this order (host_public_keys too).
    std::vector<std::string> host_key_types = config::default_host_key_types();
    // The whole fleet (all groups), for the block of /etc/hosts aplspawn manages.
    std::vector<HostEntry> fleet_hosts;
    // Its interfaces besides host0 (networkd gets a file for each, as for host0).
    std::vector<ProvisionInterface> networks;
};

// aplspawn's Python for Ansible inside each container whose image has /usr/bin/python3: runs
// the modules Ansible pipes in with their compiled code cached (src/fleet/ansible_python3.py).
// The inventory names it as ansible_python_interpreter.
inline constexpr const char* kAnsiblePython = "/usr/local/lib/aplspawn/ansible-python3";

struct ProvisionResult {
    std::vector<std::string> host_public_keys;  // "ssh-ed25519 AAAA..." per host key type
    bool has_sudo = false;                       // sudo usable by the user (drop-in in place)
    std::string python_interpreter;              // kAnsiblePython when python3 is there, else ""

    // What was written, one entry per file or step ("wrote /etc/hostname"), for -v output;
    // empty when the root already was as wanted. Never contains a password.
    std::vector<std::string> changes;
    // Things the user should know (INFO lines), e.g. a host resolver on loopback.
    std::vector<std::string> notes;

    Change change() const { return changes.empty() ? Change::unchanged : Change::changed; }
};

// Provisions the container root `root` (the merged overlay directory). Throws Error with context
// "provision NAME: ..." naming the file and what was wrong.
ProvisionResult provision(const std::filesystem::path& root, const ProvisionSpec& spec);

// Only /etc/hosts, in a running container's root when the fleet changed: its own names and the
// block of the other containers. Unchanged when it already says that.
Change update_hosts(const std::filesystem::path& root, const std::string& hostname, Ipv4 ip,
                    const std::vector<HostEntry>& fleet);

// What the boot profiles mask (each only when the image has it; see provision_units.cpp).
// full, the default: units in /etc/systemd/system and generators in
// /etc/systemd/system-generators that never do anything in a container aplspawn starts.
const std::vector<std::string>& full_masked_units();
const std::vector<std::string>& full_masked_generators();
// lean: full's, and these units a test fleet never needs.
const std::vector<std::string>& lean_masked_units();

}  // namespace aplspawn::fleet
