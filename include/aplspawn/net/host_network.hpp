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

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace aplspawn::net {

struct NetSpec {
    std::string bridge;  // bridge.name
    Address address;     // bridge.address/bridge.netPrefix: the fleet's gateway
    std::string table;   // the nftables table aplspawn owns (family ip)

    Subnet subnet() const { return Subnet::of(address.address, address.prefix); }
    NatSpec nat() const { return NatSpec{table, bridge, subnet()}; }
};

// What netup created or changed, so that netdown undoes exactly that and nothing else.
struct NetRecord {
    std::string bridge;
    int bridge_index = 0;           // ifindex of the bridge netup created (guards against a
                                    // later link of the same name that is not ours)
    bool bridge_created = false;    // netup created the bridge: netdown deletes it
    std::string address;            // "10.10.12.1/26"
    bool address_added = false;     // netup added the address to a bridge it found
    bool link_set_up = false;       // netup set a bridge it found up: netdown sets it down
    std::string table;              // aplspawn's nftables table (always removed by netdown)
    std::optional<int> ip_forward_before;  // set when netup changed ip_forward: the old value

    std::string to_json() const;
    // Throws Error "net state FILE: ..." when the text is not a record.
    static NetRecord from_json(std::string_view text, const std::filesystem::path& file);
};

std::optional<NetRecord> load_record(const std::filesystem::path& file);
void save_record(const std::filesystem::path& file, const NetRecord& record);  // atomic
Change remove_record(const std::filesystem::path& file);

// A record written for another bridge, address or table than spec: netup refuses to mix them
// (netdown with the record first). Throws Error naming both.
void check_record_matches(const NetRecord& record, const NetSpec& spec, const std::filesystem::path& file);

// The host as it is now.
struct Observed {
    std::optional<Link> link;  // the link named spec.bridge
    bool has_address = false;  // it carries spec.address
    int ip_forward = 0;
    NatState nat;
    std::string nat_unreadable;  // why the table could not be read (not root: --dry-run only)
};

Observed observe(Netlink& nl, Nftables& nft, const NetSpec& spec);

struct UpPlan {
    bool create_bridge = false;
    bool add_address = false;
    bool set_up = false;
    bool enable_forwarding = false;
    bool write_forward_rules = false;  // chain forward missing or different
    bool write_nat_rules = false;      // chain postrouting missing or different
    bool write_table() const { return write_forward_rules || write_nat_rules; }
    bool nothing() const {
        return !create_bridge && !add_address && !set_up && !enable_forwarding && !write_table();
    }
};

// Throws Error when a link of the bridge's name exists and is not a bridge.
UpPlan plan_up(const NetSpec& spec, const Observed& now);

// Brings a record up to date with the host before netup adds to it: a bridge recorded as created
// but gone or replaced since is no longer ours to delete.
void reconcile_record(NetRecord& record, const Observed& now);

// What netdown acts on: the record's names (what netup made), or spec's when there is none.
struct DownTarget {
    std::string bridge;
    Address address;
    std::string table;
};

DownTarget down_target(const std::optional<NetRecord>& record, const NetSpec& spec);

struct DownObserved {
    std::optional<Link> link;  // the link named target.bridge
    bool has_address = false;  // it carries target.address
    int ip_forward = 0;
    bool table_exists = false;
    std::string table_unreadable;  // why nftables could not be read (not root: --dry-run only)
};

DownObserved observe_down(Netlink& nl, Nftables& nft, const DownTarget& target);

struct DownPlan {
    DownTarget target;
    bool remove_table = false;
    bool delete_bridge = false;
    bool remove_address = false;
    bool set_down = false;
    std::optional<int> restore_forwarding;  // the value to write back
    // Why something is left alone ("bridge nspawnd0 was not created by netup: left as it is").
    std::vector<std::string> notes;
    bool nothing() const {
        return !remove_table && !delete_bridge && !remove_address && !set_down && !restore_forwarding;
    }
};

DownPlan plan_down(const std::optional<NetRecord>& record, const DownTarget& target, const DownObserved& now);

// "10.10.12.1/26" -> Address; nullopt when malformed.
std::optional<Address> parse_address(std::string_view text);

}  // namespace aplspawn::net
