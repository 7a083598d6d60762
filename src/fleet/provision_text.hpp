// Pure text of the files provisioning writes (other than the account databases, see
// provision_accounts.hpp): hosts, machine-id, sudoers, authorized_keys, resolv.conf, the networkd
// file for host0, and aplspawn's own provisioning record. No I/O.
#pragma once

#include "aplspawn/fleet/provision.hpp"
#include "aplspawn/ipv4.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aplspawn::fleet::text {

// /etc/hosts with "IP<TAB>NAME" and "127.0.1.1<TAB>NAME". Lines aplspawn manages (address
// 127.0.1.1 or IP, or NAME as their only name) are replaced where the first of them was, else
// the two lines go after the 127.0.0.1 line, else at the end. Then the fleet's block: every other
// container of the fleet, "IP<TAB>NAME", between kFleetBegin and kFleetEnd lines at the end (an
// earlier block is replaced; none when the fleet is this container alone). Every other line is
// kept.
inline constexpr std::string_view kFleetBegin = "# BEGIN aplspawn fleet (managed by aplspawn)";
inline constexpr std::string_view kFleetEnd = "# END aplspawn fleet";
std::string hosts_with(std::string_view hosts, std::string_view name, Ipv4 ip,
                       const std::vector<HostEntry>& fleet = {});
// /etc/hosts without what hosts_with adds (the container's own lines, the fleet's block).
std::string hosts_without(std::string_view hosts, std::string_view name, Ipv4 ip);

// A machine-id systemd accepts: 32 lower-case hex digits (then an optional newline), not all
// zeros. "", "uninitialized" and anything else are not.
bool is_valid_machine_id(std::string_view content);
// A fresh random one (version 4 UUID bits, as systemd makes them), without newline.
std::string new_machine_id();

// The sudoers drop-in: passwordless sudo for user.
std::string sudoers_dropin(std::string_view user);
// Its name in /etc/sudoers.d: sudo skips names containing '.' or ending in '~'.
std::string sudoers_dropin_name(std::string_view user);
// Whether sudoers reads /etc/sudoers.d ("@includedir /etc/sudoers.d" or "#includedir ...").
bool sudoers_includes_dropins(std::string_view sudoers);

// "TYPE BASE64" of a public key line ("ssh-ed25519 AAAA... comment", also with leading
// authorized_keys options); nullopt when the line holds no key.
std::optional<std::string> public_key_id(std::string_view line);
// authorized_keys with every key line of keys present once (compared by type and key, so a
// changed comment adds nothing). Other lines are kept.
std::string authorized_keys_with(std::string_view existing, std::string_view keys);

// resolv.conf naming one nameserver.
std::string resolv_conf_for(Ipv4 dns);
// Nameservers of a resolv.conf, in order.
std::vector<std::string> nameservers(std::string_view resolv);
// Whether a host's resolv.conf is systemd-resolved's stub (nameserver 127.0.0.53 or .54): the
// real upstream servers are then in /run/systemd/resolve/resolv.conf.
bool is_resolved_stub(std::string_view resolv);

// /etc/systemd/network/10-aplspawn-NAME.network: an interface's static address (and for host0
// the gateway and DNS), so that systemd-networkd keeps what aplspawn set before the container
// started: no DHCP (its 80-container-host0.network asks for it on host0), and
// KeepConfiguration=static, so it does not drop the addresses and routes it finds at start.
std::string networkd_interface(std::string_view name, Ipv4 ip, int prefix, std::optional<Ipv4> gateway,
                               std::optional<Ipv4> dns);
// The file's name for an interface, and whether a name is one of aplspawn's such files.
std::string networkd_file(std::string_view interface);
bool is_networkd_file(std::string_view file_name);

// aplspawn's record inside the container (/var/lib/aplspawn/provision): which identity it gave
// the container, so that a respawn keeps exactly that and an image's baked-in machine-id or
// host keys are replaced, and which units and generators the boot profile masked.
struct Record {
    std::string hostname;
    std::string machine_id;
    std::vector<std::string> host_keys;  // "TYPE BASE64"
    std::vector<std::string> masked;             // unit names
    std::vector<std::string> masked_generators;  // generator names
    friend bool operator==(const Record&, const Record&) = default;
};
Record parse_record(std::string_view text);
std::string format_record(const Record& r);

}  // namespace aplspawn::fleet::text
