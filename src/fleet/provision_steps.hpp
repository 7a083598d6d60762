// The steps of fleet::provision (provision.cpp runs them in order), one file each:
//   provision_identity.cpp   /etc/hostname, /etc/hosts (own names, the fleet's), /etc/machine-id
//   provision_user.cpp       group, user, passwords, home, ~/.ssh/authorized_keys
//   provision_sudo.cpp       /etc/sudoers.d drop-in (visudo-checked), sudoers includedir
//   provision_network.cpp    /etc/resolv.conf; networkd file for host0
//   provision_host_keys.cpp  fresh SSH host keys (the host's ssh-keygen, into the root's /etc/ssh)
//   provision_units.cpp      the boot profile's masked units and generators
//   provision_ansible.cpp    aplspawn's Python for Ansible (its compiled module code cached)
// Every step reads and writes only through sys::RootFs.
#pragma once

#include "aplspawn/fleet/provision.hpp"
#include "aplspawn/sys/rootfs.hpp"
#include "fleet/provision_text.hpp"

#include <filesystem>
#include <string>
#include <string_view>

namespace aplspawn::fleet::detail {

struct Step {
    const sys::RootFs& root;
    const ProvisionSpec& spec;
    const text::Record& previous;  // what an earlier provision of this container recorded
    text::Record& record;          // what this one gives it (written last)
    ProvisionResult& result;

    // Notes a change for ProvisionResult::changes when c says something was written.
    void note(Change c, std::string what) {
        if (c == Change::changed) result.changes.push_back(std::move(what));
    }
};

void provision_identity(Step& s);
void provision_user(Step& s);
void provision_sudo(Step& s);
void provision_resolver(Step& s);
void provision_networkd(Step& s);
void provision_host_keys(Step& s);
void provision_boot_profile(Step& s);
void provision_ansible_python(Step& s);

// /etc/hosts with the container's own names and the fleet's block (text::hosts_with).
Change write_hosts(const sys::RootFs& root, const std::string& name, Ipv4 ip,
                   const std::vector<HostEntry>& fleet);

// Writes path keeping the owner and mode of the regular file already there (/etc/shadow's
// root:shadow 0640, say); `fallback` when there is none.
Change write_keeping_attrs(const sys::RootFs& root, std::string_view path,
                           std::string_view content, const sys::FileAttrs& fallback);

}  // namespace aplspawn::fleet::detail
