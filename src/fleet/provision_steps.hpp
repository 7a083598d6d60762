// The steps of fleet::provision (provision.cpp runs them in order), one file each:
//   provision_identity.cpp   /etc/hostname, /etc/hosts, /etc/machine-id
//   provision_user.cpp       group, user, passwords, home, ~/.ssh/authorized_keys
//   provision_sudo.cpp       /etc/sudoers.d drop-in (visudo-checked), sudoers includedir
//   provision_network.cpp    /etc/resolv.conf; networkd file for host0
//   provision_host_keys.cpp  fresh SSH host keys (ssh-keygen on the host, private temp dir)
//   provision_units.cpp      the boot profile's masked units
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

// Writes path keeping the owner and mode of the regular file already there (/etc/shadow's
// root:shadow 0640, say); `fallback` when there is none.
Change write_keeping_attrs(const sys::RootFs& root, std::string_view path,
                           std::string_view content, const sys::FileAttrs& fallback);

// A private (0700) directory on the host for files that must not be seen by others while they
// exist (host keys being generated, the sudoers drop-in being checked); removed with its content.
class HostTempDir {
public:
    HostTempDir();
    ~HostTempDir();
    HostTempDir(const HostTempDir&) = delete;
    HostTempDir& operator=(const HostTempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

}  // namespace aplspawn::fleet::detail
