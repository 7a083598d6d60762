// Boot profiles: units and generators masked in the container's /etc/systemd (symlinks to
// /dev/null, each only when the image has it). full (the default) masks what never does anything
// in a container aplspawn starts; lean masks, on top of that, units a test fleet never needs.
// Masks the image made itself are left alone; masks aplspawn made that the current profile does
// not want are taken back (the record says which were aplspawn's).
#include "fleet/provision_steps.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace aplspawn::fleet {

const std::vector<std::string>& full_masked_units() {
    // systemd-nspawn mounted /, /dev, /proc and /sys before the container's systemd started, and
    // gives the console to aplspawn's log file (--console=read-only): these find nothing to do,
    // at the price of a unit each (a process, a cgroup, a mount-table walk) at every boot.
    static const std::vector<std::string> units{
        "systemd-remount-fs.service",               // / as nspawn mounted it; no fstab entry for it
        "systemd-tmpfiles-setup-dev-early.service",  // static /dev nodes: nspawn made /dev
        "systemd-tmpfiles-setup-dev.service",        //   (trixie splits it in two)
        "dev-hugepages.mount",                       // hugetlbfs for a test host's processes
        "sys-kernel-config.mount",                   // configfs, debugfs, tracefs: not a
        "sys-kernel-debug.mount",                    //   container's to mount (nspawn gives
        "sys-kernel-tracing.mount",                  //   it no CAP_SYS_RAWIO)
        "sys-fs-fuse-connections.mount",             // fusectl (fuse mounts work without it)
        "console-getty.service",                     // a login prompt on a read-only console
    };
    return units;
}

const std::vector<std::string>& full_masked_generators() {
    // Generators run at every boot and daemon-reload, each its own process. These read disks,
    // boot loader, TPM and kernel command line (in a container: nspawn's argv, empty), or make
    // gettys for the console, or sshd sockets on AF_VSOCK and AF_UNIX beside the one on host0.
    static const std::vector<std::string> generators{
        "systemd-getty-generator",         "systemd-gpt-auto-generator",
        "systemd-cryptsetup-generator",    "systemd-veritysetup-generator",
        "systemd-integritysetup-generator", "systemd-hibernate-resume-generator",
        "systemd-bless-boot-generator",    "systemd-system-update-generator",
        "systemd-run-generator",           "systemd-debug-generator",
        "systemd-tpm2-generator",          "systemd-ssh-generator",
        "systemd-factory-reset-generator", "systemd-import-generator",
    };
    return generators;
}

const std::vector<std::string>& lean_masked_units() {
    // Each checked against Debian bookworm booted in systemd-nspawn: nothing else depends on
    // them, and SSH, logins, sudo and the journal work without them. On top of full's.
    static const std::vector<std::string> units{
        "apt-daily.timer",                       // package list downloads
        "apt-daily-upgrade.timer",               // unattended upgrades
        "dpkg-db-backup.timer",                  // daily dpkg database backup
        "e2scrub_all.timer",                     // ext4-on-LVM scrubbing: no LVM in a container
        "e2scrub_reap.service",                  // its boot-time cleanup
        "fstrim.timer",                          // discards: the host's business
        "man-db.timer",                          // man page index rebuilds
        "motd-news.timer",                       // Ubuntu: fetches news over the network
        "systemd-update-utmp-runlevel.service",  // utmp runlevel record at boot
    };
    return units;
}

namespace detail {
namespace {

constexpr std::array<std::string_view, 2> kVendorDirs = {"/usr/lib/systemd", "/lib/systemd"};

// `sub` is "system" (units) or "system-generators".
bool image_has(const sys::RootFs& root, std::string_view sub, const std::string& name) {
    for (auto dir : kVendorDirs)
        if (auto st = root.status(fmt::format("{}/{}/{}", dir, sub, name)); st && S_ISREG(st->st_mode))
            return true;
    return false;
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
}

// Masks `wanted` in /etc/systemd/SUB, takes back aplspawn's earlier masks (`previous`) that are
// not wanted any more, and returns the masks that are aplspawn's now.
std::vector<std::string> apply_masks(Step& s, std::string_view sub, std::string_view what,
                                     const std::vector<std::string>& wanted,
                                     const std::vector<std::string>& previous) {
    const auto& root = s.root;
    const std::string etc = fmt::format("/etc/systemd/{}", sub);
    std::vector<std::string> ours;
    for (const auto& name : previous)
        if (!contains(wanted, name) && root.read_link(etc + "/" + name) == "/dev/null")
            s.note(root.remove(etc + "/" + name), fmt::format("unmasked {} {}", what, name));
    bool have_dir = false;
    for (const auto& name : wanted) {
        if (!image_has(root, sub, name)) continue;
        const std::string path = etc + "/" + name;
        if (root.symlink_status(path)) {
            // Masked already: by us (keep it on record) or by the image (leave it its own).
            // Anything else there is the image's configuration of it: left alone.
            if (root.read_link(path) == "/dev/null" && contains(previous, name)) ours.push_back(name);
            continue;
        }
        if (!have_dir) {
            s.note(root.ensure_dir(etc), "created " + etc);
            have_dir = true;
        }
        s.note(root.symlink(path, "/dev/null"), fmt::format("masked {} {}", what, name));
        ours.push_back(name);
    }
    return ours;
}

}  // namespace

void provision_boot_profile(Step& s) {
    std::vector<std::string> units = full_masked_units();
    if (s.spec.profile == config::BootProfile::lean)
        for (const auto& u : lean_masked_units())
            if (!contains(units, u)) units.push_back(u);
    s.record.masked = apply_masks(s, "system", "unit", units, s.previous.masked);
    s.record.masked_generators = apply_masks(s, "system-generators", "generator",
                                             full_masked_generators(),
                                             s.previous.masked_generators);
}

}  // namespace detail
}  // namespace aplspawn::fleet
