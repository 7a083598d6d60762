// status, network part: health::network_checks on a host set up by netup, then with one thing
// broken at a time: exactly that check fails, with a reason.
#include "aplspawn/config.hpp"
#include "aplspawn/health/network.hpp"
#include "support/testing.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>

using namespace aplspawn;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct Fleet {
    testing::TempDir dir;
    fs::path file = dir / "aplspawn.yaml";
    config::Config cfg;
    Fleet() {
        testing::write_file(file, testing::base_config(dir.path()));
        cfg = config::load(file);
    }
    void netup() const {
        auto r = testing::aplspawn({"-c", file.string(), "netup"}, 60s);
        INFO(r.err);
        REQUIRE(r.ok());
    }
};

void sh(const std::vector<std::string>& argv) { sys::run_checked(argv); }

// "bridge.up=ok forwarding=FAIL ..." in the report's order.
std::string summary(const health::Report& report) {
    std::string s;
    for (const auto& c : report) s += fmt::format("{}={} ", c.check, c.ok ? "ok" : "FAIL");
    return s;
}

const health::CheckResult& find(const health::Report& report, std::string_view id) {
    for (const auto& c : report)
        if (c.check == id) return c;
    FAIL("no check " << id);
    throw;
}

}  // namespace

TEST_CASE("network checks pass after netup, in the original's order and words", "[net][status]") {
    Fleet f;
    f.netup();
    auto report = health::network_checks(f.cfg);
    REQUIRE(report.size() == 5);
    CHECK(summary(report) == "bridge.exists=ok bridge.address=ok bridge.up=ok forwarding=ok nat=ok ");
    CHECK(report[0].title == "Checking if bridge apltest0 exists");
    CHECK(report[1].title == "Checking if bridge has IP 10.77.0.1/24 assigned");
    CHECK(report[2].title == "Checking if bridge apltest0 is up");
    CHECK(report[3].title == "Checking if traffic forwarding is enabled /proc/sys/net/ipv4/ip_forward");
    CHECK(report[4].title == "Checking NAT table aplspawn_APLTEST");
    for (const auto& c : report) CHECK(c.container.empty());
}

TEST_CASE("network checks on a bare host fail, each with its reason", "[net][status]") {
    Fleet f;
    auto report = health::network_checks(f.cfg);
    CHECK(summary(report) == "bridge.exists=FAIL bridge.address=FAIL bridge.up=FAIL forwarding=FAIL nat=FAIL ");
    CHECK(find(report, "bridge.exists").detail == "no link named apltest0");
    CHECK(find(report, "bridge.address").detail == "no bridge apltest0");
    CHECK(find(report, "forwarding").detail == "net.ipv4.ip_forward is 0");
    CHECK(find(report, "nat").detail == "table ip aplspawn_APLTEST is missing");
}

// Each case breaks one thing on a host set up by netup (one test case each: ctest gives every
// case fresh namespaces, Catch2 sections would share one).
TEST_CASE("network checks: a bridge set down fails only bridge.up", "[net][status]") {
    // A bridge without ports has no carrier but is up: only the administrative state counts.
    Fleet f;
    f.netup();
    sh({"ip", "link", "set", "apltest0", "down"});
    auto report = health::network_checks(f.cfg);
    CHECK(summary(report) == "bridge.exists=ok bridge.address=ok bridge.up=FAIL forwarding=ok nat=ok ");
    CHECK(find(report, "bridge.up").detail == "it is administratively down");
}

TEST_CASE("network checks: another address fails only bridge.address", "[net][status]") {
    Fleet f;
    f.netup();
    sh({"ip", "addr", "del", "10.77.0.1/24", "dev", "apltest0"});
    sh({"ip", "addr", "add", "10.77.0.2/24", "dev", "apltest0"});
    auto report = health::network_checks(f.cfg);
    CHECK(summary(report) == "bridge.exists=ok bridge.address=FAIL bridge.up=ok forwarding=ok nat=ok ");
    CHECK(find(report, "bridge.address").detail == "it has 10.77.0.2/24");
}

TEST_CASE("network checks: forwarding off fails only forwarding", "[net][status]") {
    Fleet f;
    f.netup();
    std::ofstream("/proc/sys/net/ipv4/ip_forward") << "0\n";
    auto report = health::network_checks(f.cfg);
    CHECK(summary(report) == "bridge.exists=ok bridge.address=ok bridge.up=ok forwarding=FAIL nat=ok ");
}

TEST_CASE("network checks: a flushed NAT chain fails only nat", "[net][status]") {
    Fleet f;
    f.netup();
    sh({"nft", "flush", "chain", "ip", "aplspawn_APLTEST", "postrouting"});
    auto report = health::network_checks(f.cfg);
    CHECK(summary(report) == "bridge.exists=ok bridge.address=ok bridge.up=ok forwarding=ok nat=FAIL ");
    CHECK_THAT(find(report, "nat").detail, Catch::Contains("chain postrouting"));
}

TEST_CASE("network checks: a non-bridge link of the bridge's name fails the bridge checks", "[net][status]") {
    Fleet f;
    f.netup();
    sh({"ip", "link", "del", "apltest0"});
    sh({"ip", "link", "add", "apltest0", "type", "veth", "peer", "name", "apltest0p"});
    auto report = health::network_checks(f.cfg);
    CHECK(summary(report) == "bridge.exists=FAIL bridge.address=FAIL bridge.up=FAIL forwarding=ok nat=ok ");
    CHECK(find(report, "bridge.exists").detail == "apltest0 exists but is not a bridge (kind veth)");
}
