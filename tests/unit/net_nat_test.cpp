// The NAT table's text, how a live listing is compared with it, and how a host firewall that
// drops forwarded traffic is recognised in `nft -j list ruleset` output. Pure logic.
#include "aplspawn/net/nat.hpp"

#include <catch2/catch.hpp>

using namespace aplspawn;
using namespace aplspawn::net;

namespace {

NatSpec spec() { return NatSpec{"aplspawn_NSPAWN", "nspawnd0", Subnet{*Ipv4::parse("10.10.12.0"), 26}}; }

// What nft 1.0.6 printed for the table netup writes (`nft list table ip aplspawn_NSPAWN`),
// captured from a live run.
constexpr const char* kLiveListing =
    "table ip aplspawn_NSPAWN {\n"
    "\tchain forward {\n"
    "\t\ttype filter hook forward priority filter; policy accept;\n"
    "\t\tiifname \"nspawnd0\" accept\n"
    "\t\toifname \"nspawnd0\" ct state established,related accept\n"
    "\t}\n"
    "\n"
    "\tchain postrouting {\n"
    "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
    "\t\tip saddr 10.10.12.0/26 oifname != \"nspawnd0\" masquerade\n"
    "\t}\n"
    "}\n";

}  // namespace

TEST_CASE("the table is rendered exactly as nft lists it", "[net][nat]") {
    CHECK(render_table(spec()) == kLiveListing);
}

TEST_CASE("names that could break out of nft's syntax are refused", "[net][nat]") {
    NatSpec s = spec();
    s.bridge = "br\" accept; drop";
    CHECK_THROWS_WITH(render_table(s), Catch::Contains("bridge") && Catch::Contains("only letters"));
    s = spec();
    s.table = "t; flush ruleset";
    CHECK_THROWS_WITH(render_table(s), Catch::Contains("nftables table"));
}

TEST_CASE("parse_listing cuts a table into chains", "[net][nat]") {
    auto chains = parse_listing(kLiveListing);
    REQUIRE(chains.size() == 2);
    CHECK(chains["forward"] == std::vector<std::string>{
                                   "type filter hook forward priority filter; policy accept;",
                                   "iifname \"nspawnd0\" accept",
                                   "oifname \"nspawnd0\" ct state established,related accept"});
    CHECK(chains["postrouting"].size() == 2);
}

TEST_CASE("a listing as wanted is complete, whitespace does not matter", "[net][nat]") {
    CHECK(compare_listing(spec(), std::string_view(kLiveListing)).complete());
    std::string spaced = kLiveListing;
    for (auto pos = spaced.find('\t'); pos != std::string::npos; pos = spaced.find('\t')) spaced.replace(pos, 1, "    ");
    CHECK(compare_listing(spec(), std::string_view(spaced)).complete());
}

TEST_CASE("a missing table, a changed rule, a missing chain and extra objects are each seen", "[net][nat]") {
    SECTION("missing") {
        NatState st = compare_listing(spec(), std::nullopt);
        CHECK_FALSE(st.table_exists);
        CHECK_FALSE(st.complete());
        CHECK(st.problem(spec()) == "table ip aplspawn_NSPAWN is missing");
    }
    SECTION("a rule differs: only that chain is wrong") {
        std::string l = kLiveListing;
        l.replace(l.find("10.10.12.0/26"), 13, "10.10.13.0/26");
        NatState st = compare_listing(spec(), std::string_view(l));
        CHECK(st.table_exists);
        CHECK(st.forward_ok);
        CHECK_FALSE(st.postrouting_ok);
        CHECK_THAT(st.problem(spec()), Catch::Contains("chain postrouting"));
    }
    SECTION("a rule was added by hand") {
        std::string l = kLiveListing;
        l.insert(l.find("\t}\n"), "\t\tip daddr 1.2.3.4 drop\n");
        NatState st = compare_listing(spec(), std::string_view(l));
        CHECK_FALSE(st.forward_ok);
        CHECK(st.postrouting_ok);
    }
    SECTION("a chain is missing") {
        std::string l = "table ip aplspawn_NSPAWN {\n\tchain forward {\n"
                        "\t\ttype filter hook forward priority filter; policy accept;\n"
                        "\t\tiifname \"nspawnd0\" accept\n"
                        "\t\toifname \"nspawnd0\" ct state established,related accept\n\t}\n}\n";
        NatState st = compare_listing(spec(), std::string_view(l));
        CHECK(st.forward_ok);
        CHECK_FALSE(st.postrouting_ok);
    }
    SECTION("a set and another chain are extra") {
        std::string l = kLiveListing;
        l.insert(l.rfind('}'), "\n\tset blocked {\n\t\ttype ipv4_addr\n\t}\n\n\tchain other {\n\t}\n");
        NatState st = compare_listing(spec(), std::string_view(l));
        CHECK(st.forward_ok);
        CHECK(st.postrouting_ok);
        CHECK(st.extra);
        CHECK_FALSE(st.complete());
    }
}

namespace {

// `nft -j list ruleset` of a host with Docker (iptables-nft), trimmed to what matters.
constexpr const char* kDockerRuleset = R"({"nftables": [
 {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
 {"table": {"family": "ip", "name": "filter", "handle": 1}},
 {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "handle": 1, "type": "filter",
            "hook": "forward", "prio": 0, "policy": "drop"}},
 {"chain": {"family": "ip", "table": "filter", "name": "DOCKER-USER", "handle": 2}},
 {"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", "handle": 5,
           "expr": [{"jump": {"target": "DOCKER-USER"}}]}},
 {"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", "handle": 6,
           "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "docker0"}},
                    {"accept": null}]}},
 {"table": {"family": "ip", "name": "aplspawn_NSPAWN", "handle": 2}},
 {"chain": {"family": "ip", "table": "aplspawn_NSPAWN", "name": "forward", "handle": 1,
            "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}
]})";

}  // namespace

TEST_CASE("Docker's FORWARD policy drop is found, with advice for DOCKER-USER", "[net][nat]") {
    auto drops = find_forward_drops(kDockerRuleset, "aplspawn_NSPAWN", "nspawnd0");
    REQUIRE(drops.size() == 1);
    CHECK(drops[0].family == "ip");
    CHECK(drops[0].table == "filter");
    CHECK(drops[0].chain == "FORWARD");
    CHECK(drops[0].iptables);
    CHECK(drops[0].docker_user);
    std::string note = forward_drop_note(drops[0], "nspawnd0");
    CHECK_THAT(note, Catch::Contains("policy drop") && Catch::Contains("Docker") &&
                         Catch::Contains("iptables -I DOCKER-USER -i nspawnd0 -j ACCEPT") &&
                         Catch::Contains("RELATED,ESTABLISHED"));
    CHECK(note.find('\n') == std::string::npos);  // one line
}

TEST_CASE("a drop chain that already lets the bridge through is not reported", "[net][nat]") {
    std::string json = kDockerRuleset;
    json.insert(json.rfind("]}"),
                R"(, {"rule": {"family": "ip", "table": "filter", "chain": "DOCKER-USER", "handle": 9,
        "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "nspawnd0"}},
                 {"accept": null}]}})");
    CHECK(find_forward_drops(json, "aplspawn_NSPAWN", "nspawnd0").empty());
    // ... but a rule for another bridge does not count.
    CHECK(find_forward_drops(json, "aplspawn_NSPAWN", "nspawnd1").size() == 1);
}

TEST_CASE("a native nftables drop chain gets nft advice, accept policies and our table are ignored", "[net][nat]") {
    constexpr const char* ruleset = R"({"nftables": [
 {"chain": {"family": "inet", "table": "filter", "name": "forward", "type": "filter",
            "hook": "forward", "prio": 0, "policy": "drop"}},
 {"chain": {"family": "inet", "table": "open", "name": "forward", "type": "filter",
            "hook": "forward", "prio": 0, "policy": "accept"}},
 {"chain": {"family": "ip", "table": "other", "name": "input", "type": "filter",
            "hook": "input", "prio": 0, "policy": "drop"}},
 {"chain": {"family": "ip", "table": "aplspawn_X", "name": "forward", "type": "filter",
            "hook": "forward", "prio": 0, "policy": "drop"}}
]})";
    auto drops = find_forward_drops(ruleset, "aplspawn_X", "br0");
    REQUIRE(drops.size() == 1);
    CHECK_FALSE(drops[0].iptables);
    CHECK_THAT(forward_drop_note(drops[0], "br0"),
               Catch::Contains("nft insert rule inet filter forward iifname \"br0\" accept"));
}

TEST_CASE("unreadable or empty rulesets find nothing", "[net][nat]") {
    CHECK(find_forward_drops("", "t", "b").empty());
    CHECK(find_forward_drops("not json", "t", "b").empty());
    CHECK(find_forward_drops(R"({"nftables": []})", "t", "b").empty());
}
