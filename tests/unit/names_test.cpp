// The fleet's addresses and names, as the original derives them.
#include "aplspawn/config.hpp"

#include <catch2/catch.hpp>

using namespace aplspawn;

TEST_CASE("fleet addresses: the first `amount` from the start, end exclusive", "[names]") {
    auto ips = config::fleet_addresses(*Ipv4::parse("10.10.12.10"), *Ipv4::parse("10.10.12.40"), 3);
    REQUIRE(ips.size() == 3);
    CHECK(ips[0].str() == "10.10.12.10");
    CHECK(ips[2].str() == "10.10.12.12");
    auto capped = config::fleet_addresses(*Ipv4::parse("10.0.0.1"), *Ipv4::parse("10.0.0.3"), 5);
    CHECK(capped.size() == 2);
    auto across = config::fleet_addresses(*Ipv4::parse("10.0.0.254"), *Ipv4::parse("10.0.1.2"), 4);
    REQUIRE(across.size() == 4);
    CHECK(across[2].str() == "10.0.1.0");
}

TEST_CASE("machine names systemd accepts", "[names]") {
    for (const char* ok : {"aplspawn10", "a", "node-1", "web.example", "A1", "x-y.z-w"})
        CHECK(config::is_valid_machine_name(ok));
    for (const char* bad : {"", "-a", "a-", "a..b", ".a", "a.", "a_b", "a b", "ä1", "a/b"})
        CHECK_FALSE(config::is_valid_machine_name(bad));
    CHECK(config::is_valid_machine_name(std::string(64, 'a')));
    CHECK_FALSE(config::is_valid_machine_name(std::string(65, 'a')));
}

TEST_CASE("names are nameTmpl plus the last octet", "[names]") {
    auto c = config::parse(R"(
bridge: {name: b0, address: 10.0.0.1, netPrefix: 16}
path: {workingDirectory: /w}
image: {url: "file:///i.img"}
cntVariables: {userName: u, sshPublicKeyPath: /k.pub}
cntCommon: {amount: 4, nameTmpl: web-, sshPrivateKeyPath: /k, ipRange: [10.0.0.254, 10.0.1.9]}
)",
                           "/x.yaml");
    REQUIRE(c.fleet.size() == 4);
    CHECK(c.fleet[0].name == "web-254");
    CHECK(c.fleet[1].name == "web-255");
    CHECK(c.fleet[2].name == "web-0");
    CHECK(c.fleet[2].ip.str() == "10.0.1.0");
    CHECK(c.fleet[3].name == "web-1");
}

TEST_CASE("more than 256 addresses would repeat names and are refused", "[names]") {
    CHECK_THROWS_WITH(config::parse(R"(
bridge: {name: b0, address: 10.0.0.1, netPrefix: 16}
path: {workingDirectory: /w}
image: {url: "file:///i.img"}
cntVariables: {userName: u, sshPublicKeyPath: /k.pub}
cntCommon: {amount: 300, sshPrivateKeyPath: /k, ipRange: [10.0.0.2, 10.0.2.0]}
)",
                                    "/x.yaml"),
                      Catch::Contains("cntCommon.amount") && Catch::Contains("repeat the name"));
}
