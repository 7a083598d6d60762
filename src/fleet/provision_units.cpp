// Boot profiles. lean masks, in /etc/systemd/system, units a test fleet never needs; full masks
// nothing and takes back the masks lean made before (the record says which were aplspawn's).
#include "fleet/provision_steps.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace aplspawn::fleet {

const std::vector<std::string>& lean_masked_units() {
    // Each checked against Debian bookworm booted in systemd-nspawn: nothing else depends on
    // them, and SSH, logins, sudo and the journal work without them.
    static const std::vector<std::string> units{
        "console-getty.service",                 // login prompt on nspawn's console (log file)
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

constexpr std::array<std::string_view, 2> kVendorDirs = {"/usr/lib/systemd/system",
                                                          "/lib/systemd/system"};

bool image_has_unit(const sys::RootFs& root, const std::string& unit) {
    for (auto dir : kVendorDirs)
        if (auto st = root.status(fmt::format("{}/{}", dir, unit)); st && S_ISREG(st->st_mode))
            return true;
    return false;
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

void provision_boot_profile(Step& s) {
    const auto& root = s.root;
    const std::string etc = "/etc/systemd/system";
    if (s.spec.profile == config::BootProfile::full) {
        for (const auto& unit : s.previous.masked)
            if (root.read_link(etc + "/" + unit) == "/dev/null")
                s.note(root.remove(etc + "/" + unit), "unmasked " + unit);
        return;
    }
    bool have_dir = false;
    for (const auto& unit : lean_masked_units()) {
        if (!image_has_unit(root, unit)) continue;
        const std::string path = etc + "/" + unit;
        auto st = root.symlink_status(path);
        if (st) {
            // Masked already: by us (keep it on record) or by the image (leave it its own).
            // Anything else there is the image's configuration of that unit: left alone.
            if (root.read_link(path) == "/dev/null" && contains(s.previous.masked, unit))
                s.record.masked.push_back(unit);
            continue;
        }
        if (!have_dir) {
            s.note(root.ensure_dir(etc), "created " + etc);
            have_dir = true;
        }
        s.note(root.symlink(path, "/dev/null"), "masked " + unit);
        s.record.masked.push_back(unit);
    }
}

}  // namespace detail
}  // namespace aplspawn::fleet
