// net::create_container_network and friends on real bridges, veths and named network namespaces
// (sys/netns.hpp), in the test's own namespaces, without a container: the namespace, its
// interfaces with their stable MACs and addresses, the host ends on their bridges with aplspawn's
// alias, the default route on the main interface only; ensure_addresses repairs what was taken
// away; teardown leaves nothing and never touches a link that is not ours.
#include "aplspawn/net/container_network.hpp"
#include "aplspawn/net/link.hpp"
#include "aplspawn/net/netlink.hpp"
#include "aplspawn/sys/netns.hpp"
#include "integration/fleet_support.hpp"

#include <catch2/catch.hpp>

using namespace aplspawn;
using namespace aplspawn::testing;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

Ipv4 ip(const char* s) { return *Ipv4::parse(s); }

// Three bridges (main, backend, storage), each with the host's address.
void three_bridges() {
    make_bridge("aptmain0", "10.61.0.1/24");
    make_bridge("aptback0", "10.62.0.1/24");
    make_bridge("aptstor0", "10.63.0.1/24");
}

net::Interface iface(std::string name, const char* address, std::string bridge, std::string host_name,
                     std::optional<Ipv4> gateway = std::nullopt) {
    net::Interface i;
    i.name = name;
    i.address = {ip(address), 24};
    i.gateway = gateway;
    i.mac = net::stable_mac("in:" + name);
    i.bridge = std::move(bridge);
    i.host_name = std::move(host_name);
    i.host_mac = net::stable_mac("out:" + name);
    i.alias = "aplspawn:test:c1:" + name;
    return i;
}

net::ContainerNetwork three_interfaces() {
    return {"aplspawn-c1",
            {iface("host0", "10.61.0.10", "aptmain0", "aptest0", ip("10.61.0.1")),
             iface("backend", "10.62.0.10", "aptback0", "aptest1"),
             iface("storage", "10.63.0.10", "aptstor0", "aptest2")}};
}

std::vector<net::HostEnd> ends_of(const net::ContainerNetwork& n) {
    std::vector<net::HostEnd> out;
    for (const auto& i : n.interfaces) out.push_back({i.host_name, i.alias});
    return out;
}

std::string in_ns(const std::string& netns, std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"ip", "netns", "exec", netns});
    return sys::run_checked(argv).out;
}

}  // namespace

TEST_CASE("a container's network: three interfaces on three bridges, made before anything runs",
          "[net][container_network]") {
    three_bridges();
    auto host = net::Netlink::open();
    const auto spec = three_interfaces();
    net::create_container_network(host, spec);

    // `ip netns` sees the name; inside: lo and the three interfaces, up, with their addresses
    // and the MACs asked for; one default route, via the main interface.
    CHECK_THAT(sys::run_checked({"ip", "netns", "list"}).out, Contains("aplspawn-c1"));
    auto inside = net::Netlink::open_in_netns(sys::netns_path("aplspawn-c1").string());
    auto states = net::interface_states(inside);
    REQUIRE(states.size() == 4);
    for (const auto& i : spec.interfaces) {
        INFO(i.name);
        auto link = net::find_link(inside, i.name);
        REQUIRE(link);
        CHECK(link->up());
        CHECK(net::ipv4_addresses(inside, link->index) == std::vector<net::Address>{i.address});
        CHECK_THAT(in_ns(spec.netns, {"ip", "link", "show", i.name}), Contains(i.mac.str()));
    }
    CHECK(net::find_link(inside, "lo")->up());
    auto route = net::default_route(inside);
    REQUIRE(route);
    CHECK(route->gateway == ip("10.61.0.1"));
    CHECK(route->oif == net::find_link(inside, "host0")->index);

    // On the host: each end a port of its bridge, up, with aplspawn's alias and its MAC.
    for (const auto& i : spec.interfaces) {
        INFO(i.host_name);
        auto end = net::find_link(host, i.host_name);
        REQUIRE(end);
        CHECK(end->kind == "veth");
        CHECK(end->master == net::find_link(host, i.bridge)->index);
        CHECK(end->alias == i.alias);
        CHECK(end->up());
        CHECK_THAT(sys::run_checked({"ip", "link", "show", i.host_name}).out, Contains(i.host_mac.str()));
    }
    // Every address answers from the host's address on its network.
    for (const char* a : {"10.61.0.10", "10.62.0.10", "10.63.0.10"}) CHECK(eventually([&] { return pings(a); }, 5s));

    // Nothing to do when all is in place; an address or a link state taken away comes back.
    CHECK(net::ensure_addresses(inside, spec.interfaces) == Change::unchanged);
    in_ns(spec.netns, {"ip", "addr", "flush", "dev", "backend"});
    in_ns(spec.netns, {"ip", "link", "set", "storage", "down"});
    CHECK(net::ensure_addresses(inside, spec.interfaces) == Change::changed);
    CHECK(net::ensure_addresses(inside, spec.interfaces) == Change::unchanged);
    CHECK(eventually([&] { return pings("10.62.0.10") && pings("10.63.0.10"); }, 5s));

    // Making it again is refused: the name is taken (the caller's record decides what is ours).
    CHECK_THROWS_WITH(net::create_container_network(host, spec), Contains("File exists"));
    CHECK(sys::netns_exists("aplspawn-c1"));  // the failed attempt did not take the first one down

    // Teardown: the name released, the kernel destroys the namespace with its veth pairs (the
    // socket inside was the last other reference); nothing left.
    inside = net::Netlink::open();
    auto t0 = std::chrono::steady_clock::now();
    auto t = net::remove_container_network(host, spec.netns, ends_of(spec));
    CHECK(std::chrono::steady_clock::now() - t0 < net::kReleasedNetnsGone);  // no fallback needed
    CHECK(t.change == Change::changed);
    CHECK(t.notes.empty());
    for (const auto& i : spec.interfaces) CHECK_FALSE(net::find_link(host, i.host_name));
    CHECK_FALSE(sys::netns_exists("aplspawn-c1"));
    CHECK(sys::run_checked({"bridge", "link", "show"}).out.empty());  // no port left on any bridge
    CHECK(net::remove_container_network(host, spec.netns, ends_of(spec)).change == Change::unchanged);
}

TEST_CASE("teardown of a namespace something still holds: its host ends deleted after the wait",
          "[net][container_network]") {
    three_bridges();
    auto host = net::Netlink::open();
    const auto spec = three_interfaces();
    net::create_container_network(host, spec);
    // A socket inside keeps the namespace alive once its name is gone (as a process would).
    auto holder = net::Netlink::open_in_netns(sys::netns_path(spec.netns).string());
    auto t0 = std::chrono::steady_clock::now();
    auto t = net::remove_container_network(host, spec.netns, ends_of(spec), 300ms);
    CHECK(std::chrono::steady_clock::now() - t0 >= 300ms);
    CHECK(t.change == Change::changed);
    CHECK(t.notes.empty());
    for (const auto& i : spec.interfaces) CHECK_FALSE(net::find_link(host, i.host_name));
    CHECK_FALSE(sys::netns_exists(spec.netns));
    CHECK(sys::run_checked({"bridge", "link", "show"}).out.empty());
    // The container ends went with their pairs: the held namespace has only lo left.
    auto left = net::interface_states(holder);
    REQUIRE(left.size() == 1);
    CHECK(left[0].name == "lo");
}

TEST_CASE("teardown never deletes a link of a host end's name that is not ours",
          "[net][container_network]") {
    three_bridges();
    auto host = net::Netlink::open();
    // Someone else's link with the name the record gives a host end.
    sys::run_checked({"ip", "link", "add", "aptest1", "type", "bridge"});
    auto t = net::remove_container_network(host, "aplspawn-c1", ends_of(three_interfaces()));
    CHECK(net::find_link(host, "aptest1"));
    REQUIRE(t.notes.size() == 1);
    CHECK_THAT(t.notes[0], Contains("aptest1") && Contains("left alone"));
}

TEST_CASE("a host end's name taken on the host: creation fails naming it and leaves nothing",
          "[net][container_network]") {
    three_bridges();
    auto host = net::Netlink::open();
    sys::run_checked({"ip", "link", "add", "aptest2", "type", "bridge"});
    const auto spec = three_interfaces();
    try {
        net::create_container_network(host, spec);
        FAIL("created over a taken name");
    } catch (const Error& e) {
        CHECK_THAT(e.message(), Contains("aplspawn-c1") && Contains("interface storage") &&
                                    Contains("aptest2") && Contains("File exists"));
    }
    // Rolled back: no namespace, no host end of ours; the other link is still there.
    CHECK_FALSE(sys::netns_exists("aplspawn-c1"));
    CHECK_FALSE(net::find_link(host, "aptest0"));
    CHECK_FALSE(net::find_link(host, "aptest1"));
    CHECK(net::find_link(host, "aptest2")->kind == "bridge");
}

TEST_CASE("a missing bridge is named", "[net][container_network]") {
    make_bridge("aptmain0", "10.61.0.1/24");
    auto host = net::Netlink::open();
    CHECK_THROWS_WITH(net::create_container_network(host, three_interfaces()),
                      Contains("aptback0") && Contains("No such device"));
    CHECK_FALSE(sys::netns_exists("aplspawn-c1"));
}

TEST_CASE("named namespaces as ip netns keeps them", "[net][netns]") {
    sys::create_netns("aplspawn-t1");
    CHECK(sys::netns_exists("aplspawn-t1"));
    CHECK_THAT(sys::run_checked({"ip", "netns", "list"}).out, Contains("aplspawn-t1"));
    // Only a loopback inside, down.
    CHECK_THAT(in_ns("aplspawn-t1", {"ip", "-o", "link"}), Contains("1: lo:"));
    CHECK(in_ns("aplspawn-t1", {"ip", "-o", "link"}).find("2:") == std::string::npos);
    // A second one of that name: EEXIST, the first untouched.
    CHECK_THROWS_WITH(sys::create_netns("aplspawn-t1"), Contains("File exists"));
    CHECK(sys::netns_exists("aplspawn-t1"));
    // ip netns can delete what we made, and we can delete what ip netns made.
    sys::run_checked({"ip", "netns", "add", "aplspawn-t2"});
    CHECK(sys::remove_netns("aplspawn-t2") == Change::changed);
    CHECK(sys::run_checked({"ip", "netns", "delete", "aplspawn-t1"}).ok());
    CHECK(sys::remove_netns("aplspawn-t1") == Change::unchanged);
    // A name whose creation was interrupted (the file, no mount) is removed too.
    write_file(sys::netns_path("aplspawn-t3"), "");
    CHECK(sys::remove_netns("aplspawn-t3") == Change::changed);
    CHECK_THROWS_WITH(sys::create_netns("../x"), Contains("cannot name"));
}
