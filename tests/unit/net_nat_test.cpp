// The NAT table's text, how its JSON listing is compared with the wanted objects, and how a host firewall that
// drops forwarded traffic is recognised in `nft -j list ruleset` output. Pure logic.
#include "aplspawn/net/nat.hpp"

#include <catch2/catch.hpp>

using namespace aplspawn;
using namespace aplspawn::net;

namespace {

NatSpec spec() { return NatSpec{"aplspawn_NSPAWN", {{"nspawnd0", Subnet{*Ipv4::parse("10.10.12.0"), 26}, true}}}; }

// The fleet's bridge, an isolated network (backend) and a NATed one (storage).
NatSpec spec_with_networks() {
    NatSpec s = spec();
    s.bridges.push_back({"apsbk0", Subnet{*Ipv4::parse("10.20.0.0"), 24}, false});
    s.bridges.push_back({"apsst0", Subnet{*Ipv4::parse("10.50.0.0"), 16}, true});
    return s;
}

// What nft 1.0.6 printed for that table, captured from a live run.
constexpr const char* kLiveListingWithNetworks =
    "table ip aplspawn_NSPAWN {\n"
    "\tchain forward {\n"
    "\t\ttype filter hook forward priority filter; policy accept;\n"
    "\t\tiifname \"apsbk0\" oifname != \"apsbk0\" drop\n"
    "\t\toifname \"apsbk0\" iifname != \"apsbk0\" drop\n"
    "\t\tiifname \"nspawnd0\" accept\n"
    "\t\toifname \"nspawnd0\" ct state established,related accept\n"
    "\t\tiifname \"apsst0\" accept\n"
    "\t\toifname \"apsst0\" ct state established,related accept\n"
    "\t}\n"
    "\n"
    "\tchain postrouting {\n"
    "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
    "\t\tip saddr 10.10.12.0/26 oifname != \"nspawnd0\" masquerade\n"
    "\t\tip saddr 10.50.0.0/16 oifname != \"apsst0\" masquerade\n"
    "\t}\n"
    "}\n";

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
    s.bridges[0].bridge = "br\" accept; drop";
    CHECK_THROWS_WITH(render_table(s), Catch::Contains("bridge") && Catch::Contains("only letters"));
    s = spec();
    s.table = "t; flush ruleset";
    CHECK_THROWS_WITH(render_table(s), Catch::Contains("nftables table"));
}

namespace {

// What nft 1.0.6 listed as JSON for the table netup writes (`nft -j list table ip
// aplspawn_NSPAWN`), captured from a live run.
constexpr const char* kLiveJson = R"({"nftables": [
 {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
 {"table": {"family": "ip", "name": "aplspawn_NSPAWN", "handle": 1}},
 {"chain": {"family": "ip", "table": "aplspawn_NSPAWN", "name": "forward", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}},
 {"chain": {"family": "ip", "table": "aplspawn_NSPAWN", "name": "postrouting", "handle": 2, "type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}},
 {"rule": {"family": "ip", "table": "aplspawn_NSPAWN", "chain": "forward", "handle": 3, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "nspawnd0"}}, {"accept": null}]}},
 {"rule": {"family": "ip", "table": "aplspawn_NSPAWN", "chain": "forward", "handle": 4, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "nspawnd0"}}, {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]}},
 {"rule": {"family": "ip", "table": "aplspawn_NSPAWN", "chain": "postrouting", "handle": 5, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "10.10.12.0", "len": 26}}}}, {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "nspawnd0"}}, {"masquerade": null}]}}
]})";

NatState compare(const nlohmann::json& doc) { return compare_listing(spec(), std::string_view(doc.dump())); }

nlohmann::json live() { return nlohmann::json::parse(kLiveJson); }

// The index in the listing of the object `kind` whose `key` is `value`.
std::size_t find(const nlohmann::json& doc, const char* kind, const char* key, const char* value) {
    const auto& items = doc["nftables"];
    for (std::size_t i = 0; i < items.size(); ++i)
        if (items[i].contains(kind) && items[i][kind].value(key, "") == value) return i;
    FAIL("no " << kind << " with " << key << " " << value);
    return 0;
}

}  // namespace

// What nft 1.0.6 listed as JSON for spec_with_networks()'s table, captured from a live run.
constexpr const char* kLiveJsonWithNetworks = R"({"nftables": [
 {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
 {"table": {"family": "ip", "name": "aplspawn_NSPAWN", "handle": 1}},
 {"chain": {"family": "ip", "table": "aplspawn_NSPAWN", "name": "forward", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}},
 {"chain": {"family": "ip", "table": "aplspawn_NSPAWN", "name": "postrouting", "handle": 2, "type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}},
 {"rule": {"family": "ip", "table": "aplspawn_NSPAWN", "chain": "forward", "handle": 3, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "apsbk0"}}, {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "apsbk0"}}, {"drop": null}]}},
 {"rule": {"family": "ip", "table": "aplspawn_NSPAWN", "chain": "forward", "handle": 4, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "apsbk0"}}, {"match": {"op": "!=", "left": {"meta": {"key": "iifname"}}, "right": "apsbk0"}}, {"drop": null}]}},
 {"rule": {"family": "ip", "table": "aplspawn_NSPAWN", "chain": "forward", "handle": 5, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "nspawnd0"}}, {"accept": null}]}},
 {"rule": {"family": "ip", "table": "aplspawn_NSPAWN", "chain": "forward", "handle": 6, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "nspawnd0"}}, {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]}},
 {"rule": {"family": "ip", "table": "aplspawn_NSPAWN", "chain": "forward", "handle": 7, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "apsst0"}}, {"accept": null}]}},
 {"rule": {"family": "ip", "table": "aplspawn_NSPAWN", "chain": "forward", "handle": 8, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "apsst0"}}, {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]}},
 {"rule": {"family": "ip", "table": "aplspawn_NSPAWN", "chain": "postrouting", "handle": 9, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "10.10.12.0", "len": 26}}}}, {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "nspawnd0"}}, {"masquerade": null}]}},
 {"rule": {"family": "ip", "table": "aplspawn_NSPAWN", "chain": "postrouting", "handle": 10, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "10.50.0.0", "len": 16}}}}, {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "apsst0"}}, {"masquerade": null}]}}
]})";

TEST_CASE("networks: an isolated bridge's drops first, a NATed one like the fleet's bridge",
          "[net][nat][networks]") {
    CHECK(render_table(spec_with_networks()) == kLiveListingWithNetworks);
    CHECK(compare_listing(spec_with_networks(), std::string_view(kLiveJsonWithNetworks)).complete());
    // The one-bridge table is not the table of a fleet with networks: netup rewrites it.
    NatState st = compare_listing(spec_with_networks(), std::string_view(kLiveJson));
    CHECK_FALSE(st.forward_ok);
    CHECK_FALSE(st.postrouting_ok);
    // The isolation rules moved after an accept would no longer isolate: that is a difference.
    auto moved = nlohmann::json::parse(kLiveJsonWithNetworks);
    auto& items = moved["nftables"];
    auto first_drop = items[4];
    items.erase(items.begin() + 4);
    items.insert(items.begin() + 8, first_drop);
    NatState m = compare_listing(spec_with_networks(), std::string_view(moved.dump()));
    CHECK_FALSE(m.forward_ok);
    CHECK(m.postrouting_ok);
    // A drop that lets traffic out (its != turned into ==) is a difference too.
    auto loose = nlohmann::json::parse(kLiveJsonWithNetworks);
    loose["nftables"][4]["rule"]["expr"][1]["match"]["op"] = "==";
    CHECK_FALSE(compare_listing(spec_with_networks(), std::string_view(loose.dump())).forward_ok);
}

TEST_CASE("the JSON listing of the table netup writes is complete, whatever its handles", "[net][nat]") {
    CHECK(compare_listing(spec(), std::string_view(kLiveJson)).complete());
    auto doc = live();
    for (auto& item : doc["nftables"])
        for (auto& [kind, body] : item.items())
            if (body.contains("handle")) body["handle"] = 99;
    CHECK(compare(doc).complete());
    // Keys in another order are the same object.
    CHECK(compare(nlohmann::json::parse(nlohmann::ordered_json::parse(kLiveJson).dump())).complete());
}

TEST_CASE("a missing table, a changed rule, a missing chain and extra objects are each seen", "[net][nat]") {
    SECTION("missing") {
        NatState st = compare_listing(spec(), std::nullopt);
        CHECK_FALSE(st.table_exists);
        CHECK_FALSE(st.complete());
        CHECK(st.problem(spec()) == "table ip aplspawn_NSPAWN is missing");
    }
    SECTION("a rule differs: only that chain is wrong") {
        auto doc = live();
        auto i = find(doc, "rule", "chain", "postrouting");
        doc["nftables"][i]["rule"]["expr"][0]["match"]["right"]["prefix"]["addr"] = "10.10.13.0";
        NatState st = compare(doc);
        CHECK(st.table_exists);
        CHECK(st.forward_ok);
        CHECK_FALSE(st.postrouting_ok);
        CHECK_THAT(st.problem(spec()), Catch::Contains("chain postrouting"));
    }
    SECTION("a rule was added by hand") {
        auto doc = live();
        doc["nftables"].push_back(nlohmann::json::parse(
            R"({"rule": {"family": "ip", "table": "aplspawn_NSPAWN", "chain": "forward", "handle": 9, "expr": [{"drop": null}]}})"));
        NatState st = compare(doc);
        CHECK_FALSE(st.forward_ok);
        CHECK(st.postrouting_ok);
    }
    SECTION("the chain's policy was changed") {
        auto doc = live();
        doc["nftables"][find(doc, "chain", "name", "forward")]["chain"]["policy"] = "drop";
        NatState st = compare(doc);
        CHECK_FALSE(st.forward_ok);
        CHECK(st.postrouting_ok);
    }
    SECTION("a rule carries a comment") {
        auto doc = live();
        doc["nftables"][find(doc, "rule", "chain", "forward")]["rule"]["comment"] = "x";
        CHECK_FALSE(compare(doc).forward_ok);
    }
    SECTION("a chain is missing") {
        auto doc = live();
        auto& items = doc["nftables"];
        for (std::size_t i = items.size(); i-- > 0;)
            if ((items[i].contains("chain") && items[i]["chain"]["name"] == "postrouting") ||
                (items[i].contains("rule") && items[i]["rule"]["chain"] == "postrouting"))
                items.erase(i);
        NatState st = compare(doc);
        CHECK(st.forward_ok);
        CHECK_FALSE(st.postrouting_ok);
    }
    SECTION("a set and another chain are extra") {
        auto doc = live();
        doc["nftables"].push_back(nlohmann::json::parse(
            R"({"set": {"family": "ip", "name": "blocked", "table": "aplspawn_NSPAWN", "type": "ipv4_addr", "handle": 7}})"));
        doc["nftables"].push_back(nlohmann::json::parse(
            R"({"chain": {"family": "ip", "table": "aplspawn_NSPAWN", "name": "other", "handle": 8}})"));
        NatState st = compare(doc);
        CHECK(st.forward_ok);
        CHECK(st.postrouting_ok);
        CHECK(st.extra);
        CHECK_FALSE(st.complete());
    }
    SECTION("text that is not nft's JSON is an error, not a verdict") {
        CHECK_THROWS_WITH(compare_listing(spec(), std::string_view("table ip aplspawn_NSPAWN {\n}\n")),
                          Catch::Contains("not nft's JSON"));
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
