// The fleet's NAT and isolation: one nftables table of aplspawn's own (family ip), written whole
// in one atomic transaction. Nothing outside that table is read for writing or touched. With the
// fleet's bridge nspawnd0 and an isolated network on apsbk0:
//
//   table ip aplspawn_NSPAWN {
//   	chain forward {
//   		type filter hook forward priority filter; policy accept;
//   		iifname "apsbk0" oifname != "apsbk0" drop
//   		oifname "apsbk0" iifname != "apsbk0" drop
//   		iifname "nspawnd0" accept
//   		oifname "nspawnd0" ct state established,related accept
//   	}
//
//   	chain postrouting {
//   		type nat hook postrouting priority srcnat; policy accept;
//   		ip saddr 10.10.12.0/26 oifname != "nspawnd0" masquerade
//   	}
//   }
//
// An isolated bridge's drops come first: nothing is forwarded into or out of it, whatever the
// rules after them accept (traffic between its own ports is bridged, not forwarded). A NATed
// bridge (the fleet's, or a network with nat: true) gets the accept pair and a masquerade rule.
// Without networks the table is exactly the one-bridge table of earlier versions.
//
// It is written as that text (nft's input language), and read back as nft's JSON
// (`nft -j list table`, the stable machine interface; the text listing is not one): every chain
// and rule is compared as structure with wanted_objects(), so a table already as wanted is left
// alone.
#pragma once

#include "aplspawn/error.hpp"
#include "aplspawn/ipv4.hpp"
#include "aplspawn/net/nftables.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aplspawn::net {

struct NatBridge {
    std::string bridge;
    Subnet subnet;     // masqueraded when leaving through another link (nat)
    bool nat = true;   // false: isolated
};

struct NatSpec {
    std::string table;               // "aplspawn_NSPAWN" (family ip)
    std::vector<NatBridge> bridges;  // the fleet's bridge first
};

inline constexpr std::string_view kForwardChain = "forward";
inline constexpr std::string_view kPostroutingChain = "postrouting";

// The wanted table, as `nft list table ip TABLE` prints it.
std::string render_table(const NatSpec& spec);

// The wanted table as the objects `nft -j list table ip TABLE` lists (without their handles):
// the table, chain forward, chain postrouting, then each chain's rules in order.
nlohmann::json wanted_objects(const NatSpec& spec);

// How the live table compares with the wanted one.
struct NatState {
    bool table_exists = false;
    bool forward_ok = false;      // chain forward exactly as wanted
    bool postrouting_ok = false;  // chain postrouting exactly as wanted
    bool extra = false;           // the table holds something else as well
    bool complete() const { return table_exists && forward_ok && postrouting_ok && !extra; }
    // What is wrong, for status: "table ip aplspawn_X is missing", "chain forward differs"...
    std::string problem(const NatSpec& spec) const;
};

// Pure: compares a JSON listing (nullopt: the table does not exist) with the wanted table.
// Throws Error when the text is not nft's JSON.
NatState compare_listing(const NatSpec& spec, std::optional<std::string_view> json_listing);

// The JSON listing of `table ip NAME`, or nullopt when there is no such table.
std::optional<std::string> list_table(Nftables& nft, std::string_view table);

NatState inspect_nat(Nftables& nft, const NatSpec& spec);

// Replaces the table with the wanted one in one transaction (add, delete, create: all or
// nothing), so no moment exists with half the rules.
void apply_nat(Nftables& nft, const NatSpec& spec);

// Deletes the table; Change::unchanged when there was none.
Change remove_nat(Nftables& nft, std::string_view table);

// A base chain of another table on the forward hook whose policy drops: the fleet's forwarded
// traffic dies there whatever aplspawn's own table accepts (every base chain on a hook sees the
// packet, and a drop in any of them is final).
struct ForwardDrop {
    std::string family;  // "ip" | "inet"
    std::string table;   // "filter"
    std::string chain;   // "FORWARD"
    bool iptables = false;     // looks like iptables-nft (table ip filter, chain FORWARD)
    bool docker_user = false;  // the table has Docker's DOCKER-USER chain
};

// Pure: the dropping forward chains in `nft -j list ruleset` output, skipping own_table and
// tables with a rule that already names the bridge (the user allowed it there).
std::vector<ForwardDrop> find_forward_drops(std::string_view ruleset_json, std::string_view own_table,
                                            std::string_view bridge);

// One line explaining the drop and how to allow the bridge (iptables or nft syntax).
std::string forward_drop_note(const ForwardDrop& drop, std::string_view bridge);

// The note for this host, if its firewall would drop the fleet's forwarded traffic.
std::optional<std::string> forward_drop_note(Nftables& nft, std::string_view own_table,
                                             std::string_view bridge);

}  // namespace aplspawn::net
