// netup/netdown planning and netup's record (net.json): pure logic, no host.
#include "aplspawn/net/host_network.hpp"

#include <catch2/catch.hpp>

#include <linux/if.h>

using namespace aplspawn;
using namespace aplspawn::net;

namespace {

NetSpec spec() {
    return NetSpec{{{"nspawnd0", Address{*Ipv4::parse("10.10.12.1"), 26}, "", true}}, "aplspawn_NSPAWN"};
}

// The fleet's bridge and an isolated network, backend, on apsbk0.
NetSpec spec_with_backend() {
    NetSpec s = spec();
    s.bridges.push_back({"apsbk0", Address{*Ipv4::parse("10.20.0.1"), 24}, "backend", false});
    return s;
}

Link bridge(int index, bool up, std::string name = "nspawnd0") {
    Link l;
    l.index = index;
    l.name = std::move(name);
    l.kind = "bridge";
    l.flags = up ? unsigned(IFF_UP) : 0u;
    return l;
}

Observed all_set() {
    Observed o;
    o.bridges = {{bridge(7, true), true}};
    o.ip_forward = 1;
    o.nat = NatState{true, true, true, false};
    return o;
}

BridgeRecord main_record(int index, bool created, bool address_added = false, bool set_up = false) {
    return BridgeRecord{"nspawnd0", "", index, created, "10.10.12.1/26", address_added, set_up};
}

NetRecord record(BridgeRecord b, std::optional<int> forward_before, std::string table = "aplspawn_NSPAWN") {
    return NetRecord{{std::move(b)}, std::move(table), forward_before};
}

}  // namespace

TEST_CASE("netup on a bare host plans everything", "[net][plan]") {
    Observed o;
    o.bridges.resize(1);
    UpPlan p = plan_up(spec(), o);
    CHECK(p.bridges.at(0).create_bridge);
    CHECK(p.bridges.at(0).add_address);
    CHECK(p.bridges.at(0).set_up);
    CHECK(p.enable_forwarding);
    CHECK(p.write_forward_rules);
    CHECK(p.write_nat_rules);
    CHECK_FALSE(p.nothing());
}

TEST_CASE("netup on a host already set up plans nothing", "[net][plan]") {
    CHECK(plan_up(spec(), all_set()).nothing());
}

TEST_CASE("netup plans only what differs", "[net][plan]") {
    Observed o = all_set();
    o.bridges[0].link = bridge(7, false);
    o.nat.postrouting_ok = false;
    UpPlan p = plan_up(spec(), o);
    CHECK_FALSE(p.bridges[0].create_bridge);
    CHECK_FALSE(p.bridges[0].add_address);
    CHECK(p.bridges[0].set_up);
    CHECK_FALSE(p.enable_forwarding);
    CHECK_FALSE(p.write_forward_rules);
    CHECK(p.write_nat_rules);
    CHECK(p.write_table());

    o = all_set();
    o.nat.extra = true;  // something else in our table: rewrite it whole
    CHECK(plan_up(spec(), o).write_forward_rules);
}

TEST_CASE("netup refuses a link of the bridge's name that is no bridge", "[net][plan]") {
    Observed o;
    Link veth = bridge(3, true);
    veth.kind = "veth";
    o.bridges = {{veth, false}};
    CHECK_THROWS_WITH(plan_up(spec(), o), Catch::Contains("nspawnd0") && Catch::Contains("not a bridge") &&
                                              Catch::Contains("veth") && Catch::Contains("bridge.name"));
    Link plain = bridge(1, false);
    plain.kind = "";
    o.bridges = {{plain, false}};
    CHECK_THROWS_WITH(plan_up(spec(), o), Catch::Contains("not a bridge"));
    // A network's bridge: the message names its key.
    o = all_set();
    o.bridges.push_back({veth, false});
    CHECK_THROWS_WITH(plan_up(spec_with_backend(), o),
                      Catch::Contains("network backend") && Catch::Contains("networks.backend.bridge"));
}

TEST_CASE("netup with a network: each bridge planned on its own", "[net][plan][networks]") {
    Observed o = all_set();
    o.bridges.push_back({std::nullopt, false});  // apsbk0 missing
    o.nat.forward_ok = false;                     // the table has no isolation rules yet
    UpPlan p = plan_up(spec_with_backend(), o);
    REQUIRE(p.bridges.size() == 2);
    CHECK(p.bridges[0].nothing());
    CHECK(p.bridges[1].create_bridge);
    CHECK(p.bridges[1].add_address);
    CHECK(p.bridges[1].set_up);
    CHECK(p.write_forward_rules);
    CHECK_FALSE(p.nothing());

    o.bridges[1] = {bridge(9, true, "apsbk0"), true};
    o.nat.forward_ok = true;
    CHECK(plan_up(spec_with_backend(), o).nothing());
    // The NAT spec: the fleet's bridge NATed, backend isolated.
    auto nat = spec_with_backend().nat();
    REQUIRE(nat.bridges.size() == 2);
    CHECK(nat.bridges[0].nat);
    CHECK_FALSE(nat.bridges[1].nat);
    CHECK(nat.bridges[1].subnet.str() == "10.20.0.0/24");
}

TEST_CASE("the record survives a round trip through JSON", "[net][record]") {
    NetRecord r = record(main_record(12, true), 0);
    r.bridges.push_back({"apsbk0", "backend", 13, true, "10.20.0.1/24", false, false});
    NetRecord back = NetRecord::from_json(r.to_json(), "net.json");
    CHECK(back.to_json() == r.to_json());
    CHECK(back.ip_forward_before == 0);
    REQUIRE(back.bridges.size() == 2);
    CHECK(back.bridges[1].network == "backend");
    CHECK(back.find("apsbk0")->bridge_index == 13);
    CHECK(back.find("nope") == nullptr);

    r.ip_forward_before.reset();
    CHECK_FALSE(NetRecord::from_json(r.to_json(), "net.json").ip_forward_before);
}

TEST_CASE("a record of an earlier version (one bridge) is read", "[net][record]") {
    auto r = NetRecord::from_json(R"({"bridge": "nspawnd0", "bridge_created": true, "bridge_index": 5,
        "address": "10.10.12.1/26", "address_added": false, "link_set_up": false,
        "table": "aplspawn_NSPAWN", "ip_forward_before": 0})",
                                  "net.json");
    REQUIRE(r.bridges.size() == 1);
    CHECK(r.bridges[0].bridge == "nspawnd0");
    CHECK(r.bridges[0].network.empty());
    CHECK(r.bridges[0].bridge_created);
    CHECK(r.bridges[0].bridge_index == 5);
    CHECK(r.table == "aplspawn_NSPAWN");
    CHECK(r.ip_forward_before == 0);
    CHECK_NOTHROW(check_record_matches(r, spec_with_backend(), "net.json"));  // a network added
}

TEST_CASE("a broken record is an error naming the file", "[net][record]") {
    CHECK_THROWS_WITH(NetRecord::from_json("{", "/s/net.json"), Catch::Contains("/s/net.json"));
    CHECK_THROWS_WITH(NetRecord::from_json(R"({"bridge":"b","address":"nonsense","table":"t"})", "/s/net.json"),
                      Catch::Contains("/s/net.json") && Catch::Contains("nonsense"));
}

TEST_CASE("a record of another bridge, address or table makes netup refuse", "[net][record]") {
    NetRecord r = record(main_record(4, true), std::nullopt);
    CHECK_NOTHROW(check_record_matches(r, spec(), "net.json"));
    r.bridges[0].bridge = "oldbr0";
    CHECK_THROWS_WITH(check_record_matches(r, spec(), "net.json"),
                      Catch::Contains("oldbr0") && Catch::Contains("netdown"));
    r = record(main_record(4, true), std::nullopt, "aplspawn_OLD");
    CHECK_THROWS_WITH(check_record_matches(r, spec(), "net.json"), Catch::Contains("aplspawn_OLD"));
    // A network the config no longer has, or whose address changed.
    r = record(main_record(4, true), std::nullopt);
    r.bridges.push_back({"apsbk0", "backend", 5, true, "10.20.0.1/24", false, false});
    CHECK_NOTHROW(check_record_matches(r, spec_with_backend(), "net.json"));
    CHECK_THROWS_WITH(check_record_matches(r, spec(), "net.json"),
                      Catch::Contains("bridge apsbk0 (network backend), which the config does not have"));
    r.bridges[1].address = "10.21.0.1/24";
    CHECK_THROWS_WITH(check_record_matches(r, spec_with_backend(), "net.json"),
                      Catch::Contains("10.21.0.1/24 (config: 10.20.0.1/24)"));
}

TEST_CASE("a recorded bridge that was replaced is no longer ours", "[net][record]") {
    NetRecord r = record(main_record(4, true), 0);
    Observed o = all_set();  // index 7, not 4
    reconcile_record(r, spec(), o);
    CHECK_FALSE(r.bridges[0].bridge_created);

    NetRecord same = record(main_record(7, true), 0);
    reconcile_record(same, spec(), o);
    CHECK(same.bridges[0].bridge_created);
}

TEST_CASE("parse_address", "[net][record]") {
    CHECK(parse_address("10.0.0.1/24") == Address{*Ipv4::parse("10.0.0.1"), 24});
    CHECK_FALSE(parse_address("10.0.0.1"));
    CHECK_FALSE(parse_address("10.0.0.1/33"));
    CHECK_FALSE(parse_address("10.0.0.1/2x"));
}

namespace {

DownObserved down_all(int index, bool up) {
    DownObserved o;
    o.bridges = {{bridge(index, up), true}};
    o.ip_forward = 1;
    o.table_exists = true;
    return o;
}

}  // namespace

TEST_CASE("netdown removes a bridge netup created, and restores forwarding", "[net][plan]") {
    NetRecord r = record(main_record(7, true), 0);
    auto t = down_target(r, spec());
    DownPlan p = plan_down(r, t, down_all(7, true));
    CHECK(p.remove_table);
    CHECK(p.bridges.at(0).delete_bridge);
    CHECK_FALSE(p.bridges[0].remove_address);
    CHECK_FALSE(p.bridges[0].set_down);
    CHECK(p.restore_forwarding == 0);
}

TEST_CASE("netdown removes every bridge netup created, networks included", "[net][plan][networks]") {
    NetRecord r = record(main_record(7, true), 0);
    r.bridges.push_back({"apsbk0", "backend", 9, true, "10.20.0.1/24", false, false});
    auto t = down_target(r, spec());  // the record's bridges, whatever the config says now
    REQUIRE(t.bridges.size() == 2);
    CHECK(t.bridges[1].bridge == "apsbk0");
    DownObserved o = down_all(7, true);
    o.bridges.push_back({bridge(9, true, "apsbk0"), true});
    DownPlan p = plan_down(r, t, o);
    CHECK(p.bridges.at(0).delete_bridge);
    CHECK(p.bridges.at(1).delete_bridge);
    // Without a record: the config's bridges, each left alone with a note.
    auto bare = down_target(std::nullopt, spec_with_backend());
    REQUIRE(bare.bridges.size() == 2);
    DownPlan q = plan_down(std::nullopt, bare, o);
    CHECK(q.bridges.at(1).nothing());
    CHECK(q.notes.size() == 2);
}

TEST_CASE("netdown gives a bridge it found back as it was", "[net][plan]") {
    NetRecord r = record(main_record(0, false, true, true), std::nullopt);
    DownPlan p = plan_down(r, down_target(r, spec()), down_all(7, true));
    CHECK_FALSE(p.bridges.at(0).delete_bridge);
    CHECK(p.bridges[0].remove_address);
    CHECK(p.bridges[0].set_down);
    CHECK_FALSE(p.restore_forwarding);  // netup did not change it

    // The bridge was up and had the address before netup: nothing to give back.
    NetRecord untouched = record(main_record(0, false), std::nullopt);
    DownPlan q = plan_down(untouched, down_target(untouched, spec()), down_all(7, true));
    CHECK(q.remove_table);
    CHECK(q.bridges.at(0).nothing());
}

TEST_CASE("netdown leaves a bridge that is not the one netup created", "[net][plan]") {
    NetRecord r = record(main_record(4, true), 0);
    DownPlan p = plan_down(r, down_target(r, spec()), down_all(9, true));
    CHECK_FALSE(p.bridges.at(0).delete_bridge);
    REQUIRE(p.notes.size() == 1);
    CHECK_THAT(p.notes[0], Catch::Contains("not the bridge netup created"));
}

TEST_CASE("netdown without a record removes only aplspawn's table", "[net][plan]") {
    auto t = down_target(std::nullopt, spec());
    CHECK(t.bridges.at(0).bridge == "nspawnd0");
    CHECK(t.table == "aplspawn_NSPAWN");
    DownPlan p = plan_down(std::nullopt, t, down_all(7, true));
    CHECK(p.remove_table);
    CHECK(p.bridges.at(0).nothing());
    CHECK_FALSE(p.restore_forwarding);
    CHECK(p.notes.size() == 1);

    DownObserved clean;
    clean.bridges.resize(1);
    clean.ip_forward = 0;
    CHECK(plan_down(std::nullopt, t, clean).nothing());
}

TEST_CASE("netdown acts on the record's names, not the config's", "[net][plan]") {
    NetRecord r = record(BridgeRecord{"oldbr0", "", 5, true, "10.9.0.1/24", false, false}, std::nullopt,
                         "aplspawn_OLD");
    auto t = down_target(r, spec());
    CHECK(t.bridges.at(0).bridge == "oldbr0");
    CHECK(t.bridges.at(0).address == Address{*Ipv4::parse("10.9.0.1"), 24});
    CHECK(t.table == "aplspawn_OLD");
}

TEST_CASE("forwarding someone else changed back is left alone", "[net][plan]") {
    NetRecord r = record(main_record(7, true), 0);
    DownObserved o = down_all(7, true);
    o.ip_forward = 0;
    CHECK_FALSE(plan_down(r, down_target(r, spec()), o).restore_forwarding);
}
