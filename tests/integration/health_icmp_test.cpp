// ICMP echo from the host without `ping`: over a raw socket (a fresh network namespace allows no
// ICMP datagram sockets: ping_group_range "1 0") and over a datagram socket once allowed; a peer
// in another namespace answers, a silent address does not (within the bound), no route is an
// immediate error, and parallel pings never take each other's replies.
#include "aplspawn/net/icmp.hpp"
#include "support/testing.hpp"

#include <catch2/catch.hpp>

#include <future>
#include <string>

using namespace aplspawn;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

Ipv4 ip(const char* s) { return *Ipv4::parse(s); }

// A veth pair: vh0 10.88.0.1/24 here, vp0 10.88.0.2/24 in namespace "peer".
void make_peer() {
    sys::run({"ip", "netns", "del", "peer"});
    sys::run_checked({"ip", "netns", "add", "peer"});
    sys::run_checked({"ip", "link", "add", "vh0", "type", "veth", "peer", "name", "vp0", "netns", "peer"});
    sys::run_checked({"ip", "addr", "add", "10.88.0.1/24", "dev", "vh0"});
    sys::run_checked({"ip", "link", "set", "vh0", "up"});
    sys::run_checked({"ip", "netns", "exec", "peer", "ip", "addr", "add", "10.88.0.2/24", "dev", "vp0"});
    sys::run_checked({"ip", "netns", "exec", "peer", "ip", "link", "set", "vp0", "up"});
    sys::run_checked({"ip", "netns", "exec", "peer", "ip", "link", "set", "lo", "up"});
}

void set_ping_group_range(const char* range) {
    // A sysctl of the test's own network namespace (not an atomic file write: /proc/sys).
    sys::run_checked({"sh", "-c", std::string("echo '") + range + "' > /proc/sys/net/ipv4/ping_group_range"});
}

}  // namespace

TEST_CASE("echo over a raw socket: loopback and a peer answer, a silent address does not",
          "[health][icmp]") {
    set_ping_group_range("1\t0");
    make_peer();
    auto lo = net::echo(ip("127.0.0.1"), 1000ms);
    CHECK(lo.replied);
    CHECK(lo.raw_socket);
    CHECK(lo.error.empty());
    auto peer = net::echo(ip("10.88.0.2"), 1000ms);
    CHECK(peer.replied);
    CHECK_THAT(peer.describe(1000ms), Catch::StartsWith("reply in "));

    auto start = Clock::now();
    auto silent = net::echo(ip("10.88.0.77"), 600ms, 3);
    auto took = Clock::now() - start;
    CHECK_FALSE(silent.replied);
    CHECK(silent.sent == 3);
    CHECK(took >= 590ms);
    CHECK(took < 1500ms);  // bounded by the timeout
    CHECK(silent.describe(600ms) == "no reply to 3 echo requests within 600 ms");

    // The peer's link goes down: no more replies.
    sys::run_checked({"ip", "netns", "exec", "peer", "ip", "link", "set", "vp0", "down"});
    CHECK_FALSE(net::echo(ip("10.88.0.2"), 500ms).replied);
}

TEST_CASE("echo over an ICMP datagram socket when ping_group_range allows it", "[health][icmp]") {
    set_ping_group_range("0\t2147483647");
    make_peer();
    auto r = net::echo(ip("10.88.0.2"), 1000ms);
    CHECK(r.replied);
    CHECK_FALSE(r.raw_socket);
    CHECK_FALSE(net::echo(ip("10.88.0.99"), 300ms).replied);
}

TEST_CASE("echo to an address without a route fails at once", "[health][icmp]") {
    set_ping_group_range("1\t0");
    auto start = Clock::now();
    auto r = net::echo(ip("192.0.2.1"), 2000ms);  // no default route in the test's namespace
    CHECK_FALSE(r.replied);
    CHECK_THAT(r.error, Catch::Contains("192.0.2.1") && Catch::Contains("unreachable"));
    CHECK(Clock::now() - start < 500ms);
}

TEST_CASE("parallel echoes take only their own replies", "[health][icmp]") {
    for (const char* range : {"1\t0", "0\t2147483647"}) {
        set_ping_group_range(range);
        make_peer();
        std::vector<std::future<net::EchoResult>> answered, silent;
        for (int i = 0; i < 16; ++i) {
            answered.push_back(std::async(std::launch::async, [] { return net::echo(ip("10.88.0.2"), 1000ms); }));
            silent.push_back(std::async(std::launch::async, [] { return net::echo(ip("10.88.0.3"), 700ms); }));
        }
        for (auto& f : answered) CHECK(f.get().replied);
        for (auto& f : silent) CHECK_FALSE(f.get().replied);
    }
}
