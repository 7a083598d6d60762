// The pure parts of status: the leader rule, the report's lines and --json shape, and the ICMP
// message codec. The checks themselves run against real containers in
// tests/integration/health_*_test.cpp.
#include "aplspawn/health/resources.hpp"
#include "aplspawn/health/container.hpp"
#include "aplspawn/health/status.hpp"
#include "aplspawn/net/icmp.hpp"

#include <catch2/catch.hpp>

using namespace aplspawn;
using health::LeaderFacts;

TEST_CASE("leader rule, boot mode: the image's init (systemd)", "[health]") {
    auto boot = config::StartMode::boot;
    CHECK_FALSE(health::leader_mismatch(boot, "", LeaderFacts{42, "systemd", {"/usr/lib/systemd/systemd"}}, true));
    CHECK_FALSE(health::leader_mismatch(boot, "", LeaderFacts{42, "init", {"/sbin/init"}}, false));
    auto bad = health::leader_mismatch(boot, "", LeaderFacts{42, "sh", {"/bin/sh", "-c", "x"}}, true);
    REQUIRE(bad);
    CHECK_THAT(*bad, Catch::Contains("pid 42") && Catch::Contains("/bin/sh -c x") &&
                         Catch::Contains("not the image's init"));
}

TEST_CASE("leader rule, script mode: the startup script, also after it exec'd", "[health]") {
    auto script = config::StartMode::script;
    const std::string s = "/root/starter/startup.sh";
    // exec'd directly (argv[0]) or through its #! interpreter (argv[1])
    CHECK_FALSE(health::leader_mismatch(script, s, LeaderFacts{7, "startup.sh", {s}}, false));
    CHECK_FALSE(health::leader_mismatch(script, s, LeaderFacts{7, "sh", {"/bin/sh", s, "arg"}}, false));
    // the recorded PID 1 after `exec sleep infinity`: still the script's process
    CHECK_FALSE(health::leader_mismatch(script, s, LeaderFacts{7, "sleep", {"sleep", "infinity"}}, true));
    // some other process that is not the recorded one
    auto bad = health::leader_mismatch(script, s, LeaderFacts{7, "sleep", {"sleep", "infinity"}}, false);
    REQUIRE(bad);
    CHECK_THAT(*bad, Catch::Contains("not " + s));
}

namespace {

health::StatusReport sample() {
    health::StatusReport r;
    r.host.push_back({"", "bridge.exists", "Checking if bridge b0 exists", true, "bridge b0, index 4"});
    r.host.push_back({"", "bridge.up", "Checking if bridge b0 is up", false, "b0 is down"});
    health::ContainerReport c;
    c.name = "web10";
    c.ip = "10.0.0.10";
    c.prefix = 24;
    c.checks.push_back({"web10", "machine", "Checking machinectl status for container web10 (ip 10.0.0.10)", true, ""});
    c.checks.push_back({"web10", "ping", "Checking ping to 10.0.0.10", false, "not checked: bridge b0 is down"});
    r.containers.push_back(c);
    return r;
}

}  // namespace

TEST_CASE("status lines: OK with detail only as a -v line, FAIL with its reason, INFO header",
          "[health]") {
    auto r = sample();
    auto host = health::lines(r.host);
    REQUIRE(host.size() == 3);
    CHECK(host[0].kind == out::Kind::ok);
    CHECK(host[0].text == "Checking if bridge b0 exists");
    CHECK(host[1].kind == out::Kind::debug);
    CHECK(host[2].kind == out::Kind::fail);
    CHECK(host[2].text == "Checking if bridge b0 is up: b0 is down");
    auto ct = health::lines(r.containers[0]);
    REQUIRE(ct.size() == 3);
    CHECK(ct[0].kind == out::Kind::info);
    CHECK(ct[0].text == "Checking container web10, ip 10.0.0.10/24");
    CHECK(out::format(ct[2]) == "‣ [ FAIL ] Checking ping to 10.0.0.10: not checked: bridge b0 is down\n");
}

TEST_CASE("status --json: one object per check, host checks with container null", "[health]") {
    auto r = sample();
    CHECK_FALSE(r.ok());
    auto j = health::to_json(r);
    REQUIRE(j.is_array());
    REQUIRE(j.size() == 4);
    CHECK(j[0].dump() == R"({"container":null,"group":null,"check":"bridge.exists","ok":true,"title":"Checking if bridge b0 exists","detail":"bridge b0, index 4"})");
    CHECK(j[3]["container"] == "web10");
    CHECK(j[3]["check"] == "ping");
    CHECK(j[3]["ok"] == false);
    r.host[1].ok = true;
    r.containers[0].checks[1].ok = true;
    CHECK(r.ok());
}

TEST_CASE("network problem: containers are not pinged over a missing or down bridge", "[health]") {
    auto c = config::parse(R"(
bridge: {name: b0, address: 10.0.0.1, netPrefix: 24}
path: {workingDirectory: /w}
image: {url: "file:///i.img"}
cntVariables: {userName: u, sshPublicKeyPath: /k.pub}
cntCommon: {amount: 1, sshPrivateKeyPath: /k, ipRange: [10.0.0.10, 10.0.0.20]}
)",
                           "/x.yaml");
    auto r = sample();
    CHECK(health::network_problem(c, r.host) == "bridge b0 is down");
    r.host[0].ok = false;
    CHECK(health::network_problem(c, r.host) == "bridge b0 does not exist");
    r.host[0].ok = r.host[1].ok = true;
    CHECK(health::network_problem(c, r.host).empty());
}

TEST_CASE("ICMP echo codec: checksum, request, reply with and without IPv4 header", "[health][icmp]") {
    // RFC 1071's example words sum to 0xddf2; the checksum is its complement.
    const std::uint8_t words[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    CHECK(net::internet_checksum(words, sizeof words) == static_cast<std::uint16_t>(~0xddf2));
    auto req = net::echo_request(0x1234, 3, {'h', 'i', '!'});
    REQUIRE(req.size() == 11);
    CHECK(req[0] == 8);
    CHECK(net::internet_checksum(req.data(), req.size()) == 0);  // a valid checksum sums to 0

    // The reply a host sends back: type 0, checksum adjusted.
    auto reply = req;
    reply[0] = 0;
    reply[2] = reply[3] = 0;
    auto sum = net::internet_checksum(reply.data(), reply.size());
    reply[2] = static_cast<std::uint8_t>(sum >> 8);
    reply[3] = static_cast<std::uint8_t>(sum & 0xff);
    net::EchoReply parsed;
    REQUIRE(net::parse_echo_reply(reply.data(), reply.size(), false, parsed));
    CHECK(parsed.id == 0x1234);
    CHECK(parsed.sequence == 3);

    std::vector<std::uint8_t> with_ip(20, 0);
    with_ip[0] = 0x45;  // IPv4, 5 words of header
    with_ip.insert(with_ip.end(), reply.begin(), reply.end());
    REQUIRE(net::parse_echo_reply(with_ip.data(), with_ip.size(), true, parsed));
    CHECK(parsed.sequence == 3);

    CHECK_FALSE(net::parse_echo_reply(req.data(), req.size(), false, parsed));  // a request
    reply[10] ^= 1;  // corrupted payload: bad checksum
    CHECK_FALSE(net::parse_echo_reply(reply.data(), reply.size(), false, parsed));
    CHECK_FALSE(net::parse_echo_reply(reply.data(), 4, false, parsed));  // truncated
}

TEST_CASE("the oom check: none passes, a kill fails naming how many, unreadable fails",
          "[status][resources]") {
    auto none = health::oom_check("db20", 0, 256ull << 20);
    CHECK(none.ok);
    CHECK(none.check == "oom");
    CHECK(none.detail == "none (memory limit 256 MiB)");
    auto one = health::oom_check("db20", 1, 256ull << 20);
    CHECK_FALSE(one.ok);
    CHECK(one.detail.starts_with("1 process was killed by the kernel's OOM killer at the 256 MiB"));
    CHECK(health::oom_check("db20", 3, 256ull << 20).detail.starts_with("3 processes were killed"));
    CHECK_FALSE(health::oom_check("db20", std::nullopt, 256ull << 20).ok);
}
