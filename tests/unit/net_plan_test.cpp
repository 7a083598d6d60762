// netup/netdown planning and netup's record (net.json): pure logic, no host.
#include "aplspawn/net/host_network.hpp"

#include <catch2/catch.hpp>

#include <linux/if.h>

using namespace aplspawn;
using namespace aplspawn::net;

namespace {

NetSpec spec() { return NetSpec{"nspawnd0", Address{*Ipv4::parse("10.10.12.1"), 26}, "aplspawn_NSPAWN"}; }

Link bridge(int index, bool up) { return Link{index, "nspawnd0", "bridge", up ? unsigned(IFF_UP) : 0u}; }

Observed all_set() {
    Observed o;
    o.link = bridge(7, true);
    o.has_address = true;
    o.ip_forward = 1;
    o.nat = NatState{true, true, true, false};
    return o;
}

}  // namespace

TEST_CASE("netup on a bare host plans everything", "[net][plan]") {
    Observed o;
    UpPlan p = plan_up(spec(), o);
    CHECK(p.create_bridge);
    CHECK(p.add_address);
    CHECK(p.set_up);
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
    o.link = bridge(7, false);
    o.nat.postrouting_ok = false;
    UpPlan p = plan_up(spec(), o);
    CHECK_FALSE(p.create_bridge);
    CHECK_FALSE(p.add_address);
    CHECK(p.set_up);
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
    o.link = Link{3, "nspawnd0", "veth", IFF_UP};
    CHECK_THROWS_WITH(plan_up(spec(), o), Catch::Contains("nspawnd0") && Catch::Contains("not a bridge") &&
                                              Catch::Contains("veth"));
    o.link = Link{1, "nspawnd0", "", 0};
    CHECK_THROWS_WITH(plan_up(spec(), o), Catch::Contains("not a bridge"));
}

TEST_CASE("the record survives a round trip through JSON", "[net][record]") {
    NetRecord r;
    r.bridge = "nspawnd0";
    r.bridge_created = true;
    r.bridge_index = 12;
    r.address = "10.10.12.1/26";
    r.table = "aplspawn_NSPAWN";
    r.ip_forward_before = 0;
    NetRecord back = NetRecord::from_json(r.to_json(), "net.json");
    CHECK(back.to_json() == r.to_json());
    CHECK(back.ip_forward_before == 0);

    r.ip_forward_before.reset();
    CHECK_FALSE(NetRecord::from_json(r.to_json(), "net.json").ip_forward_before);
}

TEST_CASE("a broken record is an error naming the file", "[net][record]") {
    CHECK_THROWS_WITH(NetRecord::from_json("{", "/s/net.json"), Catch::Contains("/s/net.json"));
    CHECK_THROWS_WITH(NetRecord::from_json(R"({"bridge":"b","address":"nonsense","table":"t"})", "/s/net.json"),
                      Catch::Contains("/s/net.json") && Catch::Contains("nonsense"));
}

TEST_CASE("a record of another bridge, address or table makes netup refuse", "[net][record]") {
    NetRecord r{"nspawnd0", 4, true, "10.10.12.1/26", false, false, "aplspawn_NSPAWN", std::nullopt};
    CHECK_NOTHROW(check_record_matches(r, spec(), "net.json"));
    r.bridge = "oldbr0";
    CHECK_THROWS_WITH(check_record_matches(r, spec(), "net.json"),
                      Catch::Contains("oldbr0") && Catch::Contains("netdown"));
}

TEST_CASE("a recorded bridge that was replaced is no longer ours", "[net][record]") {
    NetRecord r{"nspawnd0", 4, true, "10.10.12.1/26", false, false, "aplspawn_NSPAWN", 0};
    Observed o = all_set();  // index 7, not 4
    reconcile_record(r, o);
    CHECK_FALSE(r.bridge_created);

    NetRecord same{"nspawnd0", 7, true, "10.10.12.1/26", false, false, "aplspawn_NSPAWN", 0};
    reconcile_record(same, o);
    CHECK(same.bridge_created);
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
    o.link = bridge(index, up);
    o.has_address = true;
    o.ip_forward = 1;
    o.table_exists = true;
    return o;
}

}  // namespace

TEST_CASE("netdown removes a bridge netup created, and restores forwarding", "[net][plan]") {
    NetRecord r{"nspawnd0", 7, true, "10.10.12.1/26", false, false, "aplspawn_NSPAWN", 0};
    auto t = down_target(r, spec());
    DownPlan p = plan_down(r, t, down_all(7, true));
    CHECK(p.remove_table);
    CHECK(p.delete_bridge);
    CHECK_FALSE(p.remove_address);
    CHECK_FALSE(p.set_down);
    CHECK(p.restore_forwarding == 0);
}

TEST_CASE("netdown gives a bridge it found back as it was", "[net][plan]") {
    NetRecord r{"nspawnd0", 0, false, "10.10.12.1/26", true, true, "aplspawn_NSPAWN", std::nullopt};
    DownPlan p = plan_down(r, down_target(r, spec()), down_all(7, true));
    CHECK_FALSE(p.delete_bridge);
    CHECK(p.remove_address);
    CHECK(p.set_down);
    CHECK_FALSE(p.restore_forwarding);  // netup did not change it

    // The bridge was up and had the address before netup: nothing to give back.
    NetRecord untouched{"nspawnd0", 0, false, "10.10.12.1/26", false, false, "aplspawn_NSPAWN", std::nullopt};
    DownPlan q = plan_down(untouched, down_target(untouched, spec()), down_all(7, true));
    CHECK(q.remove_table);
    CHECK_FALSE(q.remove_address);
    CHECK_FALSE(q.set_down);
    CHECK_FALSE(q.delete_bridge);
}

TEST_CASE("netdown leaves a bridge that is not the one netup created", "[net][plan]") {
    NetRecord r{"nspawnd0", 4, true, "10.10.12.1/26", false, false, "aplspawn_NSPAWN", 0};
    DownPlan p = plan_down(r, down_target(r, spec()), down_all(9, true));
    CHECK_FALSE(p.delete_bridge);
    REQUIRE(p.notes.size() == 1);
    CHECK_THAT(p.notes[0], Catch::Contains("not the bridge netup created"));
}

TEST_CASE("netdown without a record removes only aplspawn's table", "[net][plan]") {
    auto t = down_target(std::nullopt, spec());
    CHECK(t.bridge == "nspawnd0");
    CHECK(t.table == "aplspawn_NSPAWN");
    DownPlan p = plan_down(std::nullopt, t, down_all(7, true));
    CHECK(p.remove_table);
    CHECK_FALSE(p.delete_bridge);
    CHECK_FALSE(p.remove_address);
    CHECK_FALSE(p.restore_forwarding);
    CHECK(p.notes.size() == 1);

    DownObserved clean;
    clean.ip_forward = 0;
    CHECK(plan_down(std::nullopt, t, clean).nothing());
}

TEST_CASE("netdown acts on the record's names, not the config's", "[net][plan]") {
    NetRecord r{"oldbr0", 5, true, "10.9.0.1/24", false, false, "aplspawn_OLD", std::nullopt};
    auto t = down_target(r, spec());
    CHECK(t.bridge == "oldbr0");
    CHECK(t.address == Address{*Ipv4::parse("10.9.0.1"), 24});
    CHECK(t.table == "aplspawn_OLD");
}

TEST_CASE("forwarding someone else changed back is left alone", "[net][plan]") {
    NetRecord r{"nspawnd0", 7, true, "10.10.12.1/26", false, false, "aplspawn_NSPAWN", 0};
    DownObserved o = down_all(7, true);
    o.ip_forward = 0;
    CHECK_FALSE(plan_down(r, down_target(r, spec()), o).restore_forwarding);
}
