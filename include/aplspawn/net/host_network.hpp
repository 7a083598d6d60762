// The fleet's network on the host, as netup/netdown see it: what is wanted (NetSpec), what is
// there (Observed), what netup created (NetRecord, kept in the fleet's state directory), and
// the difference between them (UpPlan, DownPlan). Planning is pure; the cli prints a plan for
// --dry-run or applies it step by step.
#pragma once

#include "aplspawn/error.hpp"
#include "aplspawn/ipv4.hpp"
#include "aplspawn/net/link.hpp"
#include "aplspawn/net/nat.hpp"
#include "aplspawn/net/netlink.hpp"
#include "aplspawn/net/nftables.hpp"
#include "aplspawn/net/vxlan.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace aplspawn::net {

// A fleet over several hosts: the VXLAN port that joins a bridge to the same bridge on the other
// hosts (net/vxlan.hpp). Its MTU, and the bridge's, is the underlay's minus kVxlanOverhead.
struct FabricSpec {
    VxlanSpec vxlan;          // name, id, port and local address (mtu: from the underlay)
    std::vector<Ipv4> peers;  // the other hosts' addresses
    std::string host;         // this host's name, for messages
};

// One bridge of the fleet: the fleet's own (bridge.name, NATed out) or a network's.
struct BridgeSpec {
    std::string name;     // the bridge
    Address address;      // the host's address on it (the fleet's gateway on the fleet's bridge)
    std::string network;  // "" for the fleet's bridge, else the network's name (for messages)
    bool nat = true;      // NATed out; false: isolated (no forwarding to or from other links)
    std::optional<FabricSpec> fabric;  // a fleet with hosts: joined to the other hosts' bridge

    Subnet subnet() const { return Subnet::of(address.address, address.prefix); }
    // "bridge nspawnd0", "bridge apsbk0 (network backend, isolated)"
    std::string title() const;
};

struct NetSpec {
    std::vector<BridgeSpec> bridges;  // the fleet's bridge first, then the networks in file order
    std::string table;                // the nftables table aplspawn owns (family ip)

    const BridgeSpec& main() const { return bridges.front(); }
    NatSpec nat() const;
};

// What netup created or changed on one bridge.
struct BridgeRecord {
    std::string bridge;
    std::string network;           // "" for the fleet's bridge
    int bridge_index = 0;          // ifindex of the bridge netup created (guards against a later
                                   // link of the same name that is not ours)
    bool bridge_created = false;   // netup created the bridge: netdown deletes it
    std::string address;           // "10.10.12.1/26"
    bool address_added = false;    // netup added the address to a bridge it found
    bool link_set_up = false;      // netup set a bridge it found up: netdown sets it down
    std::string vxlan;             // the fabric's port netup made for this bridge ("" for none)
    int vxlan_index = 0;           // its ifindex (a later link of that name is not ours)
    bool vxlan_created = false;    // netdown deletes it
    int mtu_before = 0;            // netup changed the MTU of a bridge it found: the old one (0: not)
};

// What netup created or changed, so that netdown undoes exactly that and nothing else.
struct NetRecord {
    std::vector<BridgeRecord> bridges;     // the fleet's bridge first
    std::string table;                     // aplspawn's nftables table (always removed by netdown)
    std::optional<int> ip_forward_before;  // set when netup changed ip_forward: the old value

    BridgeRecord* find(std::string_view bridge);
    const BridgeRecord* find(std::string_view bridge) const;

    std::string to_json() const;
    // Throws Error "net state FILE: ..." when the text is not a record. Reads the one-bridge
    // record of earlier versions too.
    static NetRecord from_json(std::string_view text, const std::filesystem::path& file);
};

std::optional<NetRecord> load_record(const std::filesystem::path& file);
void save_record(const std::filesystem::path& file, const NetRecord& record);  // atomic
Change remove_record(const std::filesystem::path& file);

// A record written for another table, for a bridge the config no longer has, or for another
// address on a bridge: netup refuses to mix them (netdown with the record first). A bridge the
// config has and the record does not (a network added since) is fine. Throws Error naming both.
void check_record_matches(const NetRecord& record, const NetSpec& spec, const std::filesystem::path& file);

// One bridge as it is now.
struct BridgeObserved {
    std::optional<Link> link;  // the link of the bridge's name
    bool has_address = false;  // it carries the wanted address
    std::optional<Link> vxlan;  // the link of its fabric port's name (with a fabric)
    std::vector<Ipv4> peers;    // the peers that port floods to
};

// The host as it is now.
struct Observed {
    std::vector<BridgeObserved> bridges;  // as spec.bridges
    std::optional<Link> underlay;         // with a fabric: the link that carries this host's address
    int ip_forward = 0;
    NatState nat;
    std::string nat_unreadable;  // why the table could not be read (not root: --dry-run only)
};

Observed observe(Netlink& nl, Nftables& nft, const NetSpec& spec);

// The fabric's part of a bridge's plan.
struct FabricUpPlan {
    int mtu = 0;                     // the underlay's MTU minus the VXLAN overhead
    bool create_vxlan = false;
    bool set_vxlan_mtu = false;
    bool set_bridge_mtu = false;
    bool attach = false;             // make the port a port of the bridge
    bool set_up = false;
    std::vector<Ipv4> add_peers;     // peers of the config it does not flood to yet
    std::vector<Ipv4> remove_peers;  // peers it floods to that the config no longer has
    bool nothing() const {
        return !create_vxlan && !set_vxlan_mtu && !set_bridge_mtu && !attach && !set_up && add_peers.empty() &&
               remove_peers.empty();
    }
};

struct BridgeUpPlan {
    bool create_bridge = false;
    bool add_address = false;
    bool set_up = false;
    std::optional<FabricUpPlan> fabric;
    bool nothing() const { return !create_bridge && !add_address && !set_up && (!fabric || fabric->nothing()); }
};

struct UpPlan {
    std::vector<BridgeUpPlan> bridges;  // as spec.bridges
    bool enable_forwarding = false;
    bool write_forward_rules = false;  // chain forward missing or different
    bool write_nat_rules = false;      // chain postrouting missing or different
    bool write_table() const { return write_forward_rules || write_nat_rules; }
    bool nothing() const;
};

// Throws Error when a link of a bridge's name exists and is not a bridge, when a link of a
// fabric port's name is not that VXLAN, and when no link carries this host's address.
UpPlan plan_up(const NetSpec& spec, const Observed& now);

// Brings a record up to date with the host before netup adds to it: a bridge recorded as created
// but gone or replaced since is no longer ours to delete.
void reconcile_record(NetRecord& record, const NetSpec& spec, const Observed& now);

// What netdown acts on: the record's names (what netup made), or spec's when there is none.
struct DownBridge {
    std::string bridge;
    Address address;
    std::string vxlan;  // its fabric port netup made ("" for none)
};

struct DownTarget {
    std::vector<DownBridge> bridges;
    std::string table;
};

DownTarget down_target(const std::optional<NetRecord>& record, const NetSpec& spec);

struct DownObserved {
    std::vector<BridgeObserved> bridges;  // as target.bridges (vxlan: the link of its port's name)
    int ip_forward = 0;
    bool table_exists = false;
    std::string table_unreadable;  // why nftables could not be read (not root: --dry-run only)
};

DownObserved observe_down(Netlink& nl, Nftables& nft, const DownTarget& target);

struct BridgeDownPlan {
    bool delete_bridge = false;
    bool remove_address = false;
    bool set_down = false;
    bool delete_vxlan = false;  // the fabric port netup made (before the bridge)
    int restore_mtu = 0;        // the MTU netup found on a bridge it did not make (0: leave it)
    bool nothing() const { return !delete_bridge && !remove_address && !set_down && !delete_vxlan && !restore_mtu; }
};

struct DownPlan {
    DownTarget target;
    std::vector<BridgeDownPlan> bridges;  // as target.bridges
    bool remove_table = false;
    std::optional<int> restore_forwarding;  // the value to write back
    // Why something is left alone ("bridge nspawnd0 was not created by netup: left as it is").
    std::vector<std::string> notes;
    bool nothing() const;
};

DownPlan plan_down(const std::optional<NetRecord>& record, const DownTarget& target, const DownObserved& now);

// "10.10.12.1/26" -> Address; nullopt when malformed.
std::optional<Address> parse_address(std::string_view text);

}  // namespace aplspawn::net
