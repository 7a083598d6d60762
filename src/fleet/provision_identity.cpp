// /etc/hostname, the /etc/hosts entries for the container's name, and its own machine-id.
#include "fleet/provision_steps.hpp"

#include <fmt/format.h>

namespace aplspawn::fleet::detail {
namespace {

constexpr std::string_view kDefaultHosts =
    "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n";

std::string trimmed(std::string_view s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
    return std::string(s);
}

}  // namespace

Change write_hosts(const sys::RootFs& root, const std::string& name, Ipv4 ip,
                   const std::vector<HostEntry>& fleet) {
    // The image's lines are kept from a regular file only: a symlink there is replaced by a
    // fresh file, and whatever it points at is never copied into a world-readable one.
    std::optional<std::string> hosts;
    if (auto st = root.symlink_status("/etc/hosts"); st && S_ISREG(st->st_mode))
        hosts = root.read_file("/etc/hosts");
    return write_keeping_attrs(root, "/etc/hosts",
                               text::hosts_with(hosts ? *hosts : kDefaultHosts, name, ip, fleet),
                               {0644, {}});
}

void provision_identity(Step& s) {
    const auto& name = s.spec.hostname;
    s.note(s.root.write_file("/etc/hostname", name + "\n", {0644, {}}), "wrote /etc/hostname");

    s.note(write_hosts(s.root, name, s.spec.ip, s.spec.fleet_hosts), "wrote /etc/hosts");

    // Kept only when it is valid and the one aplspawn gave this very container: an image's
    // baked-in id would be shared by the whole fleet.
    std::string id;
    if (auto st = s.root.symlink_status("/etc/machine-id"); st && S_ISREG(st->st_mode)) {
        std::string current = trimmed(s.root.read_file("/etc/machine-id").value_or(""));
        if (text::is_valid_machine_id(current) && current == s.previous.machine_id) id = current;
    }
    if (id.empty()) id = text::new_machine_id();
    s.note(s.root.write_file("/etc/machine-id", id + "\n", {0444, {}}), "wrote /etc/machine-id");
    s.record.machine_id = id;
}

}  // namespace aplspawn::fleet::detail
