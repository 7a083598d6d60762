// net::configure_container_address: a process in a network namespace of its own stands in for a
// container; one end of a veth pair is moved into it and configured from outside, over netlink.
#include "aplspawn/net/container_ip.hpp"
#include "aplspawn/net/link.hpp"
#include "aplspawn/net/netlink.hpp"
#include "support/testing.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <thread>

using namespace aplspawn;
using namespace std::chrono_literals;

namespace {

std::string netns_of(pid_t pid) {
    std::error_code ec;
    return std::filesystem::read_symlink(fmt::format("/proc/{}/ns/net", pid), ec).string();
}

// A child in a new network namespace (`unshare --net sleep`), killed when the object dies.
struct NetnsChild {
    sys::Child child;
    NetnsChild() : child(sys::spawn({"unshare", "--net", "sleep", "60"})) {
        const std::string mine = netns_of(::getpid());
        auto deadline = std::chrono::steady_clock::now() + 5s;
        while (netns_of(child.pid()) == mine || netns_of(child.pid()).empty()) {
            if (std::chrono::steady_clock::now() > deadline) FAIL("child did not enter a new netns");
            std::this_thread::sleep_for(10ms);
        }
    }
    pid_t pid() const { return child.pid(); }
    std::string in(const std::vector<std::string>& argv) const {
        std::vector<std::string> full{"nsenter", "-t", std::to_string(pid()), "-n"};
        full.insert(full.end(), argv.begin(), argv.end());
        return sys::run_checked(full).out;
    }
};

// A veth pair: "vh0" here with 10.99.0.1/24, "vc0" moved into the child.
void wire(const NetnsChild& ns) {
    sys::run_checked({"ip", "link", "add", "vh0", "type", "veth", "peer", "name", "vc0"});
    sys::run_checked({"ip", "link", "set", "vc0", "netns", std::to_string(ns.pid())});
    sys::run_checked({"ip", "addr", "add", "10.99.0.1/24", "dev", "vh0"});
    sys::run_checked({"ip", "link", "set", "vh0", "up"});
}

}  // namespace

TEST_CASE("configure_container_address sets address, link up and default route, idempotently",
          "[net][container_ip]") {
    NetnsChild ns;
    wire(ns);
    const Ipv4 ip = *Ipv4::parse("10.99.0.2");
    const Ipv4 gw = *Ipv4::parse("10.99.0.1");

    CHECK(net::configure_container_address(ns.pid(), "vc0", ip, 24, gw) == Change::changed);

    std::string addr = ns.in({"ip", "-4", "-o", "addr", "show", "dev", "vc0"});
    CHECK(addr.find("inet 10.99.0.2/24") != std::string::npos);
    std::string link = ns.in({"ip", "-o", "link", "show", "vc0"});
    CHECK(link.find("<BROADCAST,MULTICAST,UP") != std::string::npos);
    std::string route = ns.in({"ip", "-4", "route", "show", "default"});
    CHECK(route.find("default via 10.99.0.1 dev vc0") != std::string::npos);
    // Our own namespace is untouched: no default route appeared here.
    CHECK(sys::run_checked({"ip", "-4", "route", "show", "default"}).out.empty());

    // The address answers from the host side: a TCP connect to a closed port is refused by the
    // container's kernel (RST) rather than timing out, which proves the path works both ways.
    auto probe = sys::run({"/usr/bin/python3", "-c",
                           "import socket,sys\n"
                           "s=socket.socket(); s.settimeout(3)\n"
                           "try:\n  s.connect(('10.99.0.2', 9))\nexcept ConnectionRefusedError:\n"
                           "  sys.exit(0)\nexcept Exception as e:\n  print(e); sys.exit(1)\n"},
                          {.timeout = 10s});
    CHECK(probe.ok());

    // Second call: everything is already so.
    CHECK(net::configure_container_address(ns.pid(), "vc0", ip, 24, gw) == Change::unchanged);
    std::string addr2 = ns.in({"ip", "-4", "-o", "addr", "show", "dev", "vc0"});
    CHECK(addr2 == addr);
}

TEST_CASE("configure_container_address replaces a different default route", "[net][container_ip]") {
    NetnsChild ns;
    wire(ns);
    ns.in({"ip", "addr", "add", "10.99.0.2/24", "dev", "vc0"});
    ns.in({"ip", "link", "set", "vc0", "up"});
    ns.in({"ip", "route", "add", "default", "via", "10.99.0.50"});

    CHECK(net::configure_container_address(ns.pid(), "vc0", *Ipv4::parse("10.99.0.2"), 24,
                                           *Ipv4::parse("10.99.0.1")) == Change::changed);
    std::string route = ns.in({"ip", "-4", "route", "show", "default"});
    CHECK(route.find("default via 10.99.0.1 dev vc0") != std::string::npos);
    CHECK(route.find("10.99.0.50") == std::string::npos);
}

TEST_CASE("configure_container_address names the missing interface", "[net][container_ip]") {
    NetnsChild ns;
    try {
        net::configure_container_address(ns.pid(), "host0", *Ipv4::parse("10.99.0.2"), 24,
                                         *Ipv4::parse("10.99.0.1"));
        FAIL("no error");
    } catch (const Error& e) {
        CHECK_THAT(e.message(), Catch::Contains("host0") && Catch::Contains("No such device") &&
                                    Catch::Contains(std::to_string(ns.pid())));
    }
}

TEST_CASE("configure_container_address fails clearly for a process that is gone", "[net][container_ip]") {
    pid_t gone;
    {
        sys::Child c = sys::spawn({"true"});
        gone = c.pid();
        c.wait_for(5s);
    }
    CHECK_THROWS_WITH(net::configure_container_address(gone, "host0", *Ipv4::parse("10.99.0.2"), 24,
                                                       *Ipv4::parse("10.99.0.1")),
                      Catch::Contains(fmt::format("/proc/{}/ns/net", gone)));
}
