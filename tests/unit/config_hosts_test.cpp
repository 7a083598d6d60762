// A fleet over several hosts (issue 18): the hosts and fabric sections, the addresses each host
// derives from the file, where each group runs, and which host a run acts as. The refusals are
// table-driven in config_files_test.cpp (data/config/bad/hosts-*.yaml).
#include "aplspawn/config.hpp"
#include "aplspawn/error.hpp"

#include <catch2/catch.hpp>

using namespace aplspawn;
namespace fs = std::filesystem;

namespace {
const fs::path kData = fs::path(APLSPAWN_TEST_DATA) / "config";
Ipv4 ip(const char* text) { return *Ipv4::parse(text); }
}  // namespace

TEST_CASE("hosts: addresses derived from the file, each group on its host", "[config][hosts]") {
    auto c = config::load(kData / "good" / "hosts.yaml");
    REQUIRE(c.multi_host());
    REQUIRE(c.hosts.size() == 2);
    const auto& a = *c.hosts[0];
    const auto& b = *c.hosts[1];
    CHECK(a.name == "hostA");
    CHECK(a.address.str() == "192.168.250.11");
    CHECK(a.gateway.str() == "10.88.1.1");  // bridge.address + 0
    CHECK(b.gateway.str() == "10.88.1.2");  // + 1: one L2 segment, one address each
    CHECK(b.address_on(*c.networks[0]).str() == "10.88.2.2");
    CHECK(c.fabric.vxlan_id == 100);
    CHECK(c.fabric.port == 8472);
    CHECK(c.fabric.vni(1) == 101);  // the first network
    CHECK(c.host_of(*c.find_group("cache")) == &b);
    // Containers route through their own host.
    CHECK(c.find("web10")->vars().gateway.str() == "10.88.1.1");
    CHECK(c.find("db30")->vars().gateway.str() == "10.88.1.2");
    CHECK(c.find("cache50")->vars().gateway.str() == "10.88.1.2");
    // Every host's containers are in the fleet (names, inventory, /etc/hosts).
    CHECK(c.fleet.size() == 4);
}

TEST_CASE("fabric defaults and a file without hosts", "[config][hosts]") {
    auto c = config::load(kData / "good" / "groups.yaml");
    CHECK_FALSE(c.multi_host());
    CHECK(c.fabric.vxlan_id == 4242);
    CHECK(c.fabric.port == 4789);
    // Everything is local; the addresses are the file's.
    for (const auto& ct : c.fleet) CHECK(c.is_local(ct));
    CHECK(c.gateway() == c.bridge.address);
    config::place_on_host(c, "", {}, true);  // nothing to choose
    CHECK(c.local == nullptr);
    CHECK_THROWS_WITH(config::place_on_host(c, "hostA", {}, true),
                      Catch::Contains("--host hostA: groups.yaml has no hosts section"));
}

TEST_CASE("which host a run acts as: --host, else this machine's addresses", "[config][hosts]") {
    auto c = config::load(kData / "good" / "hosts.yaml");
    SECTION("by name") {
        config::place_on_host(c, "hostB", {}, true);
        REQUIRE(c.local);
        CHECK(c.local->name == "hostB");
        CHECK(c.gateway().str() == "10.88.1.2");
        CHECK(c.address_on(*c.networks[0]).str() == "10.88.2.2");
        CHECK(c.is_local(*c.find("db30")));
        CHECK_FALSE(c.is_local(*c.find("web10")));
    }
    SECTION("by address") {
        config::place_on_host(c, "", {ip("127.0.0.1"), ip("192.168.250.11")}, true);
        REQUIRE(c.local);
        CHECK(c.local->name == "hostA");
        CHECK(c.is_local(*c.find("web11")));
    }
    SECTION("an unknown name") {
        try {
            config::place_on_host(c, "hostC", {}, false);
            FAIL("accepted");
        } catch (const Error& e) {
            CHECK(e.exit_code() == Exit::usage);
            CHECK(e.message() == "--host hostC: hosts.yaml has no host of that name (hosts: hostA, hostB)");
        }
    }
    SECTION("none of the hosts: fine for names and inventory, refused for host-side operations") {
        config::place_on_host(c, "", {ip("10.0.0.5")}, false);
        CHECK(c.local == nullptr);
        for (const auto& ct : c.fleet) CHECK_FALSE(c.is_local(ct));
        CHECK_THROWS_WITH(config::place_on_host(c, "", {ip("10.0.0.5")}, true),
                          "this machine is none of hosts.yaml's hosts (hostA 192.168.250.11, hostB "
                          "192.168.250.12): give --host NAME");
    }
    SECTION("two hosts' addresses on one machine") {
        CHECK_THROWS_WITH(config::place_on_host(c, "", {ip("192.168.250.11"), ip("192.168.250.12")}, true),
                          Catch::Contains("has the addresses of hosts hostA and hostB"));
    }
}
