// The container's resolver (/etc/resolv.conf from dnsAddress, or the host's), and, when the
// image runs systemd-networkd, a .network file for host0 and one for each of its other
// interfaces, holding the static addresses aplspawn sets before the container starts, so that
// networkd (DHCP on host0 by default) cannot undo them.
#include "aplspawn/sys/fs.hpp"
#include "fleet/provision_steps.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace aplspawn::fleet::detail {
namespace {

constexpr std::array<std::string_view, 3> kUnitDirs = {"/etc/systemd/system",
                                                        "/usr/lib/systemd/system",
                                                        "/lib/systemd/system"};

// systemd-networkd is installed, not masked, and enabled (its service or socket is wanted by
// some target, in /etc or statically in the vendor directory).
bool uses_networkd(const sys::RootFs& root) {
    if (root.read_link("/etc/systemd/system/systemd-networkd.service") == "/dev/null") return false;
    bool installed = false;
    for (auto dir : kUnitDirs)
        if (auto st = root.status(fmt::format("{}/systemd-networkd.service", dir));
            st && S_ISREG(st->st_mode))
            installed = true;
    if (!installed) return false;
    for (auto dir : kUnitDirs)
        for (const auto& entry : root.list_dir(dir)) {
            if (!entry.ends_with(".wants") && !entry.ends_with(".requires")) continue;
            for (const auto& unit : root.list_dir(fmt::format("{}/{}", dir, entry)))
                if (unit == "systemd-networkd.service" || unit == "systemd-networkd.socket")
                    return true;
        }
    return false;
}

bool is_loopback(const std::string& ns) { return ns.starts_with("127.") || ns == "::1"; }

}  // namespace

void provision_resolver(Step& s) {
    std::string content;
    if (s.spec.dns) {
        content = text::resolv_conf_for(*s.spec.dns);
    } else if (s.spec.host_resolv) {
        auto host_file = sys::read_file_if_exists("/etc/resolv.conf");
        if (!host_file) {
            s.result.notes.push_back("cntCommon.bindHostResolve: the host has no "
                                     "/etc/resolv.conf; the image's is kept");
            return;
        }
        std::string host = std::move(*host_file);
        if (text::is_resolved_stub(host)) {
            // The stub listens on the host's loopback, which a container cannot reach.
            if (auto upstream = sys::read_file_if_exists("/run/systemd/resolve/resolv.conf"))
                host = *upstream;
            else
                s.result.notes.push_back("the host's /etc/resolv.conf names systemd-resolved's "
                                         "stub but /run/systemd/resolve/resolv.conf is missing");
        }
        for (const auto& ns : text::nameservers(host))
            if (is_loopback(ns))
                s.result.notes.push_back(fmt::format(
                    "the host's nameserver {} is on its loopback: containers cannot reach it "
                    "(set cntVariables.dnsAddress)",
                    ns));
        content = "# Written by aplspawn: the host's resolver configuration "
                  "(cntCommon.bindHostResolve).\n" +
                  host;
    } else {
        return;  // the image's own
    }
    // A symlink there (to systemd-resolved's stub, say) is replaced, not followed.
    s.note(s.root.write_file("/etc/resolv.conf", content, {0644, {}}), "wrote /etc/resolv.conf");
}

void provision_networkd(Step& s) {
    if (s.spec.mode != config::StartMode::boot || !uses_networkd(s.root)) return;
    constexpr std::string_view dir = "/etc/systemd/network";
    s.note(s.root.ensure_dir(dir), "created /etc/systemd/network");
    std::vector<std::string> wanted;
    auto write = [&](const std::string& name, Ipv4 ip, int prefix, std::optional<Ipv4> gateway,
                     std::optional<Ipv4> dns) {
        std::string file = text::networkd_file(name);
        wanted.push_back(file);
        std::string path = fmt::format("{}/{}", dir, file);
        s.note(s.root.write_file(path, text::networkd_interface(name, ip, prefix, gateway, dns), {0644, {}}),
               "wrote " + path);
    };
    write(std::string(config::kMainInterface), s.spec.ip, s.spec.prefix, s.spec.gateway, s.spec.dns);
    for (const auto& n : s.spec.networks) write(n.name, n.ip, n.prefix, std::nullopt, std::nullopt);
    // A network the group is no longer on: its file goes.
    for (const auto& f : s.root.list_dir(dir))
        if (text::is_networkd_file(f) && std::find(wanted.begin(), wanted.end(), f) == wanted.end())
            s.note(s.root.remove(fmt::format("{}/{}", dir, f)), fmt::format("removed {}/{}", dir, f));
}

}  // namespace aplspawn::fleet::detail
