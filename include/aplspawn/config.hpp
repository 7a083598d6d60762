// The configuration: the original aplspawn YAML, parsed once into typed structs and validated
// once. Every key is documented in docs/config.md. Errors are aplspawn::Error with exit code 2
// and a message "FILE:LINE: section.key: what is wrong (value)".
#pragma once

#include "aplspawn/ipv4.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aplspawn::config {

namespace fs = std::filesystem;

struct Bridge {
    std::string name;  // bridge.name, at most 15 bytes (IFNAMSIZ - 1)
    Ipv4 address;      // bridge.address: the gateway address on the bridge
    int prefix = 0;    // bridge.netPrefix
    Subnet subnet;     // bridge.network/netPrefix (derived from address when network is absent)
};

struct Nat {
    std::string chain_name;  // ipt.chainName, as in the original ("NSPAWN")
    std::string table;       // the nftables table aplspawn owns: "aplspawn_" + chain_name
};

struct Paths {
    fs::path working_dir;  // path.workingDirectory
    fs::path local_store;  // path.localStore        (default WORKDIR/images)
    fs::path lower;        // path.imageLowerLayer   (default WORKDIR/lower)
    fs::path upper;        // path.imageUpperPath    (default WORKDIR/upper)
    fs::path work;         // path.imageWorkPath     (default WORKDIR/work)
    fs::path state;        // path.stateDirectory    (new; default WORKDIR/state)
};

struct Image {
    std::string os;       // image.os
    std::string release;  // image.release
    std::string repo;     // image.repo (URL or directory)
    std::string url;      // image.url (new), else REPO/OS-RELEASE-latest.img
    std::string sha256;   // image.sha256 (new; lower-case hex), empty: look for SHA256SUMS
    std::string file_name;  // the image's name in the store: last URL segment, without .xz/.zst/.gz
    std::string name;       // file_name without ".img"/".raw": names the lower layer directory
    std::optional<std::string> ignored_loop_device;  // image.loopDevice: accepted, not used
    // image.snapshot (new): an image `aplspawn snapshot` made in the local store (NAME.img);
    // nothing to download. Excludes os, release, repo, url and sha256.
    std::string snapshot;
    bool from_store() const { return !snapshot.empty(); }
};

struct ContainerVariables {
    std::string user_name;      // cntVariables.userName
    std::string user_group;     // cntVariables.userGroup (default: userName)
    std::string user_password;  // cntVariables.userPassword ("" = no password)
    std::string root_password;  // cntVariables.rootPassword ("" = unchanged)
    std::optional<Ipv4> dns;    // cntVariables.dnsAddress
    int prefix = 0;             // cntVariables.netPrefix (default: bridge.netPrefix)
    Ipv4 gateway;               // cntVariables.defGateway (default: bridge.address)
    fs::path ssh_public_key;    // cntVariables.sshPublicKeyPath
    friend bool operator==(const ContainerVariables&, const ContainerVariables&) = default;
};

enum class StartMode { boot, script };

// The SSH host key types ssh-keygen can make for a container, and the default set: ed25519 and
// ecdsa. RSA is opt-in: an RSA-3072 key costs ~0.42 CPU-s per container (ed25519 and ecdsa
// ~0.014), on the critical path before nspawn starts.
const std::vector<std::string>& known_host_key_types();  // ed25519, ecdsa, rsa
std::vector<std::string> default_host_key_types();       // ed25519, ecdsa (rsa: opt-in)
enum class BootProfile { full, lean };

struct Common {
    int amount = 0;                    // cntCommon.amount (a group's own amount)
    fs::path ssh_private_key;          // cntCommon.sshPrivateKeyPath
    Ipv4 range_begin, range_end;       // cntCommon.ipRange [begin, end) (a group's own range)
    bool bind_host_resolve = false;    // cntCommon.bindHostResolve
    fs::path bind_host;                // cntCommon.bindHost (script mode: host dir bound read-only)
    fs::path variables_file;           // cntCommon.variablesFile (script mode: written on the host)
    std::string bind_container;        // cntCommon.bindContainer (absolute path in the container)
    std::string startup_script;        // cntCommon.startupScript (set: script mode)
    std::string name_template;         // cntCommon.nameTmpl (default "aplspawn"; in a group: its name)
    fs::path home_path;                // cntCommon.homePath (default /var/lib/machines)
    int ready_timeout_sec = 120;       // cntCommon.readyTimeout (new)
    BootProfile boot_profile = BootProfile::full;  // cntCommon.bootProfile (new)
    // cntCommon.hostKeyTypes (new): the SSH host keys each container gets, in this order.
    std::vector<std::string> host_key_types = default_host_key_types();
    StartMode mode() const { return startup_script.empty() ? StartMode::boot : StartMode::script; }
};

// A network besides the fleet's bridge (networks.NAME, new): a bridge of its own that netup
// creates, the host's address on it, and whether it is NATed out like the fleet's bridge or
// isolated (the default: no NAT, no forwarding to or from any other network).
struct Network {
    std::string name;    // networks.NAME: also the name of its interface in each container on it
    std::string bridge;  // networks.NAME.bridge (at most 15 bytes)
    Ipv4 address;        // networks.NAME.address: the host's address on it
    int prefix = 0;      // networks.NAME.netPrefix
    Subnet subnet;       // address/netPrefix
    bool nat = false;    // networks.NAME.nat
};

// A group's addresses on one network: groups.NAME.networks.NET: [first, end) (without groups:
// cntCommon.networks.NET).
struct NetworkRange {
    std::shared_ptr<const Network> network;
    Ipv4 begin, end;
    std::string key;  // "groups.db.networks.backend": where it is written, for messages
};

// A container's interface on a network besides the fleet's bridge, and its address there.
struct Attachment {
    std::shared_ptr<const Network> network;
    Ipv4 ip;
    friend bool operator==(const Attachment& a, const Attachment& b) {
        return a.network->name == b.network->name && a.ip == b.ip;
    }
};

// The name of the main interface in every container (on the fleet's bridge, with the default
// route). The interface on a network of `networks` is named after the network.
inline constexpr std::string_view kMainInterface = "host0";

// groups.NAME.resources (new): limits a group's containers get, enforced in their cgroups and
// shown inside them through lxcfs (docs/resources.md). Each unset: no limit.
struct Resources {
    std::optional<std::uint64_t> memory_bytes;  // memory: "512M" (K/M/G, binary), at least 32M
    std::vector<int> cpus;                      // the CPU numbers, ascending (cpus: N = the first N)
    std::optional<std::uint64_t> tasks;         // tasks: most processes and threads at once
    bool any() const { return memory_bytes || !cpus.empty() || tasks; }
    std::optional<std::uint64_t> memory_mb() const {
        if (!memory_bytes) return std::nullopt;
        return *memory_bytes / (1024 * 1024);
    }
    friend bool operator==(const Resources&, const Resources&) = default;
};

// "0-2,5" for CPUs {0,1,2,5} (the kernel's cpuset list form); "" for none.
std::string cpu_list_string(const std::vector<int>& cpus);
// The kernel's list form ("0-1,3", "1") -> CPU numbers, ascending and distinct; nullopt when the
// text is not such a list.
std::optional<std::vector<int>> parse_cpu_list(std::string_view text);
// The CPUs this machine has online (/sys/devices/system/cpu/online; else 0..nprocs-1).
std::vector<int> host_cpus();

// A host directory bound into a group's containers (groups.NAME.binds: "SRC:DST[:ro|rw]").
struct BindMount {
    fs::path host;          // absolute (relative paths resolve against the config file)
    std::string container;  // absolute path inside the container
    bool read_only = false;
    std::string key;        // "groups.web.binds[0]": where it is written, for messages
};

// The name of the one group of a file without `groups`, and the Ansible group every group of a
// file with `groups` is a child of.
inline constexpr std::string_view kFleetGroup = "aplspawned";

// A kind of host in the fleet: its own image, amount, address range, names, Ansible vars, and
// every cntCommon/cntVariables setting, inherited from the top-level sections unless the group
// sets it. A file without `groups` is one implicit group, "aplspawned", made of the top-level
// sections alone.
struct Group {
    std::string name;        // the Ansible group
    bool implicit = false;   // no `groups` in the file
    Image image;
    ContainerVariables vars;
    Common common;
    std::vector<BindMount> binds;               // groups.NAME.binds (new)
    // groups.NAME.networks (new): its range on each network besides the bridge, in the order of
    // the top-level networks section.
    std::vector<NetworkRange> networks;
    Resources resources;                        // groups.NAME.resources (new)
    nlohmann::ordered_json ansible_vars = nlohmann::ordered_json::object();  // groups.NAME.vars

    // Where a setting's value is written: "groups.web.startupScript" when the group sets it,
    // else the top-level key ("cntCommon.startupScript"), for messages. `key` is the key's name
    // in cntCommon, cntVariables or image ("image.os"), or a group-only key (amount, ipRange).
    std::string origin(std::string_view key) const;
    std::map<std::string, std::string, std::less<>> origins;  // key -> dotted path
};

// One container of the fleet: the one value every operation reads. Its name and address come from
// its group as the original derives them (ipRange[0] upward, name = nameTmpl + the IP's last
// octet); everything else is its group's.
struct Container {
    std::string name;
    Ipv4 ip;
    std::shared_ptr<const Group> group;
    int index = 0;  // the n-th container of its group, from 0
    // Its interfaces besides host0: the n-th address of each of its group's network ranges, in
    // the order of the top-level networks section.
    std::vector<Attachment> networks;

    const Common& common() const { return group->common; }
    const ContainerVariables& vars() const { return group->vars; }
    const Image& image() const { return group->image; }
};

// hosts.NAME (new): one machine of a fleet spread over several hosts. Every host runs aplspawn
// with the same file and brings up its own groups' containers; their bridges are joined into one
// L2 segment by VXLAN (the fabric). Derived from the file alone, so every machine agrees.
struct Host {
    std::string name;                 // hosts.NAME
    Ipv4 address;                     // hosts.NAME.address: where the other hosts reach it
    std::vector<std::string> groups;  // hosts.NAME.groups: the groups whose containers run there
    int index = 0;                    // its place in the file, from 0
    // Its own address on the fleet's bridge (bridge.address + index: .1 on the first host, .2 on
    // the second): one L2 segment cannot carry one address on two bridges. Its containers route
    // through it and leave through this host's NAT.
    Ipv4 gateway;
    // Its own address on a network besides the bridge: the network's address + index.
    Ipv4 address_on(const Network& n) const { return Ipv4{n.address.value + static_cast<std::uint32_t>(index)}; }
};

// fabric (new): the VXLAN that joins the hosts' bridges. The fleet's bridge carries VNI vxlanId,
// the k-th network (from 1, file order) vxlanId + k.
struct Fabric {
    std::uint32_t vxlan_id = 4242;  // fabric.vxlanId: 1..16777215 (minus the networks)
    int port = 4789;                // fabric.port: the UDP port (IANA's VXLAN port by default)
    std::uint32_t vni(int network_index) const { return vxlan_id + static_cast<std::uint32_t>(network_index); }
};

struct Config {
    fs::path file;  // absolute path of the YAML file
    Bridge bridge;
    Nat nat;
    Paths paths;
    fs::path inventory_file;  // cntCommon.inventoryFile (empty: stdout only), fleet-wide
    std::vector<std::shared_ptr<const Group>> groups;  // in file order (one, implicit, without `groups`)
    std::vector<Container> fleet;  // group by group in file order, each by ascending IP
    std::vector<std::shared_ptr<const Network>> networks;  // networks (new), in file order
    bool has_groups() const { return groups.size() != 1 || !groups.front()->implicit; }

    // hosts (new): the machines the fleet runs on, in file order; empty for a one-machine fleet.
    std::vector<std::shared_ptr<const Host>> hosts;
    Fabric fabric;  // fabric (new): only used with hosts
    // The host this run acts as (place_on_host): its groups' containers are the ones host-side
    // operations act on, its addresses the ones netup puts on the bridges. nullptr: a fleet
    // without hosts, or a machine that is none of them (a controller: names, inventory).
    std::shared_ptr<const Host> local;
    bool multi_host() const { return !hosts.empty(); }
    const Host* find_host(std::string_view name) const;
    // The host a group runs on (nullptr without hosts).
    const Host* host_of(const Group& g) const;
    // Whether this run acts on the container: every container without hosts, else the local
    // host's.
    bool is_local(const Container& ct) const;
    // This machine's address on the fleet's bridge and on a network: the local host's, else the
    // file's.
    Ipv4 gateway() const { return local ? local->gateway : bridge.address; }
    Ipv4 address_on(const Network& n) const { return local ? local->address_on(n) : n.address; }

    // "FILE:LINE: key" for messages about a key found wrong later (a missing key file, say).
    std::string where(std::string_view key) const;
    // Notes about accepted-but-ignored keys (image.loopDevice), printed as INFO lines.
    std::vector<std::string> notes;

    const Container* find(std::string_view name) const;
    const Group* find_group(std::string_view name) const;
    const Network* find_network(std::string_view name) const;
    // The distinct images of the fleet (by store file name), in group order.
    std::vector<const Image*> images() const;

    std::map<std::string, int, std::less<>> lines;  // key -> 1-based line in file
};

// Which host of the file this machine is: the one named (--host NAME), else the one whose
// address is one of `own_addresses` (this machine's). Sets c.local. Throws Error (exit 2) for a
// name the file does not have; `required` (host-side operations): also when no host matches.
// A file without hosts: nothing to choose; a name given is refused.
void place_on_host(Config& c, const std::string& name, const std::vector<Ipv4>& own_addresses,
                   bool required);

// Reads and validates. Throws Error (exit 2) naming file, line, key and value.
Config load(const fs::path& file);
// Same, from text (file is used for messages and to resolve relative paths).
Config parse(std::string_view yaml_text, const fs::path& file);

// Where the config comes from: -c FILE, else $APLSPAWN_CONFIG, else ./aplspawn.yaml,
// ./config/aplspawn.yaml, /etc/aplspawn/aplspawn.yaml. Throws Error (exit 2) when none exists.
fs::path locate(const std::optional<fs::path>& explicit_file);

// The IPs of the fleet: the first `amount` addresses from begin upward, end exclusive.
std::vector<Ipv4> fleet_addresses(Ipv4 begin, Ipv4 end, int amount);

// A name systemd accepts as a machine name (hostname rules: 1..64 bytes, dot-separated labels of
// [A-Za-z0-9-], no label empty or starting/ending with '-').
bool is_valid_machine_name(std::string_view name);

// A name for an image in the store (a snapshot's): [A-Za-z0-9][A-Za-z0-9._-]*, at most 64 bytes,
// not ending in ".img" (the store adds that).
bool is_valid_image_name(std::string_view name);

// A name a network may have (networks.NAME): it names the container's interface on it and the
// key of its address in the inventory's aplspawn_networks: [a-z][a-z0-9_]*, at most 15 bytes,
// and none of the names a new network namespace may already hold (lo, host0, sit0, gre0, ...).
bool is_valid_network_name(std::string_view name);

// A user or group name useradd accepts by default: [a-z_][a-z0-9_-]*, at most 32 bytes.
bool is_valid_user_name(std::string_view name);

// "~" and "~/x" -> $HOME; "~user/x" -> that user's home; relative -> against base.
fs::path resolve_path(std::string_view text, const fs::path& base);

}  // namespace aplspawn::config
