// Several networks per container (issue 13), through the real binary on the real Debian image, in
// the test's own namespaces: netup makes three bridges (the fleet's, an isolated one, a NATed
// one); spawn gives each container three interfaces with their addresses before it boots; the
// guest's networkd keeps them; containers talk over the isolated network; status checks every
// interface; stop and netdown leave nothing. A spawn killed at any point is finished by the next
// spawn or taken down by stop: no veth, namespace or bridge port stays behind.
#include "aplspawn/fleet/network.hpp"
#include "aplspawn/fleet/processes.hpp"
#include "aplspawn/fleet/ssh.hpp"
#include "aplspawn/net/link.hpp"
#include "aplspawn/sys/netns.hpp"
#include "integration/fleet_support.hpp"

#include <nlohmann/json.hpp>

#include <signal.h>

#include <set>

using namespace aplspawn;
using namespace aplspawn::testing;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

// cntCommon.networks for the implicit group, then the top-level networks section.
constexpr std::string_view kNetworks = R"(  networks:
    backend: [10.78.1.10, 10.78.1.100]
    storage: [10.78.2.10, 10.78.2.100]
networks:
  backend: {bridge: aplback0, address: 10.78.1.1, netPrefix: 24}
  storage: {bridge: aplstor0, address: 10.78.2.1, netPrefix: 24, nat: true}
)";

struct Env {
    TempDir t;
    fs::path cfg_file;
    config::Config c;
    fleet::StateDir state;
    explicit Env(int amount) : cfg_file(t / "aplspawn.yaml"), c(write_config(t, amount, kNetworks)), state(c) {
        install_image(c, default_image());
        REQUIRE(run({"netup"}).exit_code == 0);
    }
    sys::RunResult run(std::vector<std::string> args, std::chrono::seconds timeout = 280s) {
        args.insert(args.begin(), {"-c", cfg_file.string()});
        auto r = testing::aplspawn(args, timeout);
        UNSCOPED_INFO(testing::describe_run("aplspawn " + args.back(), r));
        return r;
    }
    sys::RunResult ssh(const config::Container& ct, const std::string& cmd) {
        return fleet::ssh_run(fleet::ssh_target(c, ct), {cmd}, 60s);
    }
};

std::string out(std::vector<std::string> argv) { return sys::run_checked(argv).out; }

// No namespace, veth or bridge port of any container; no nspawn.
void check_no_container_network(const Env& e) {
    CHECK(fleet::list_nspawn_processes().empty());
    CHECK(out({"ip", "netns", "list"}).empty());
    CHECK(out({"ip", "-o", "link", "show", "type", "veth"}).empty());
    CHECK(out({"bridge", "link", "show"}).empty());
    CHECK((!fs::exists(e.state.dir() / "networks") || fs::is_empty(e.state.dir() / "networks")));
}

}  // namespace

TEST_CASE("three interfaces on three bridges: made before boot, kept by the guest, checked, removed",
          "[fleet][networks][debian]") {
    Env e(2);
    // netup: the three bridges, the isolation of backend in aplspawn's table.
    for (const char* b : {"apltest0", "aplback0", "aplstor0"}) CHECK_THAT(out({"ip", "-br", "link", "show", b}), Contains(b));
    auto table = out({"nft", "list", "table", "ip", "aplspawn_APLTEST"});
    CHECK_THAT(table, Contains("iifname \"aplback0\" oifname != \"aplback0\" drop"));
    CHECK_THAT(table, Contains("ip saddr 10.78.2.0/24 oifname != \"aplstor0\" masquerade"));

    // aplspawn10's image runs systemd-networkd (the default image disables it): the guest's own
    // network management starts with aplspawn's addresses in place and must keep them.
    const fs::path wants = e.c.paths.upper / "aplspawn10/etc/systemd/system/multi-user.target.wants";
    fs::create_directories(wants);
    fs::create_symlink("/lib/systemd/system/systemd-networkd.service", wants / "systemd-networkd.service");

    auto up = e.run({"spawn"});
    REQUIRE(up.exit_code == 0);
    CHECK_THAT(up.err, Contains("Setting up the network of aplspawn10: host0 10.77.0.10/24 via 10.77.0.1, "
                                "backend 10.78.1.10/24, storage 10.78.2.10/24"));

    const auto& a = e.c.fleet[0];
    const auto& b = e.c.fleet[1];
    // Inside, after the guest's boot finished (its networkd had its say): every interface with
    // its address, the default route on host0 only, aplspawn's networkd files.
    auto inside = e.ssh(a, "systemctl is-system-running --wait >/dev/null; systemctl is-active systemd-networkd; "
                           "sleep 2; ip -br -4 addr; ip -4 route show default; ls /etc/systemd/network");
    REQUIRE(inside.ok());
    CHECK_THAT(inside.out, Contains("active\n"));
    CHECK_THAT(inside.out, Contains("host0") && Contains("10.77.0.10/24"));
    CHECK_THAT(inside.out, Contains("backend") && Contains("10.78.1.10/24"));
    CHECK_THAT(inside.out, Contains("storage") && Contains("10.78.2.10/24"));
    CHECK_THAT(inside.out, Contains("default via 10.77.0.1 dev host0"));
    CHECK_THAT(inside.out, Contains("10-aplspawn-backend.network") && Contains("10-aplspawn-storage.network"));
    // Its own /sys lists its own interfaces; its root manages its own namespace (routes, sysctls:
    // a router's or firewall's role needs that).
    auto own = e.ssh(a, "ls /sys/class/net | tr '\\n' ' '; sudo -n sysctl -w net.ipv4.conf.backend.forwarding=1 && "
                        "sudo -n ip route add 203.0.113.0/24 via 10.78.1.11 dev backend && echo routed");
    CHECK(own.ok());
    CHECK_THAT(own.out, Contains("backend host0 lo storage ") && Contains("routed"));
    CHECK(sys::read_file("/proc/sys/net/ipv4/conf/aplback0/forwarding") == sys::read_file("/proc/sys/net/ipv4/conf/apltest0/forwarding"));
    // The containers talk over backend; the host reaches every address.
    CHECK(e.ssh(a, "ping -c1 -W3 10.78.1.11").ok());
    CHECK(e.ssh(b, "ping -c1 -W3 10.78.2.10").ok());
    for (const char* ip : {"10.77.0.11", "10.78.1.11", "10.78.2.11"}) CHECK(pings(ip));
    // Each host end: aplspawn's name, a port of its network's bridge.
    auto record = fleet::load_network_record(e.state, a.name);
    REQUIRE(record);
    REQUIRE(record->links.size() == 3);
    CHECK(record->links[1].interface == "backend");
    CHECK(record->links[1].bridge == "aplback0");
    CHECK_THAT(out({"bridge", "link", "show", "dev", record->links[1].host}), Contains("master aplback0"));

    // status: every interface, --json lists them.
    auto st = e.run({"status", "--json"});
    CHECK(st.exit_code == 0);
    auto checks = nlohmann::json::parse(st.out);
    std::set<std::string> ids;
    for (const auto& o : checks)
        if (o["container"] == "aplspawn11") ids.insert(o["check"].get<std::string>());
    for (const char* id : {"interface.host0", "interface.backend", "interface.storage", "ping.backend", "ping.storage"})
        CHECK(ids.contains(id));
    auto lines = e.run({"status"}).err;
    CHECK_THAT(lines, Contains("‣ [ OK ] Checking if bridge aplback0 of network backend exists"));
    CHECK_THAT(lines, Contains("‣ [ OK ] Checking interface backend has 10.78.1.11/24"));
    CHECK_THAT(lines, Contains("‣ [ OK ] Checking ping to 10.78.2.11 on network storage"));

    // A second spawn changes nothing; stop takes every namespace, veth and port down.
    CHECK(e.run({"spawn"}).exit_code == 0);
    auto down = e.run({"stop"});
    CHECK(down.exit_code == 0);
    CHECK_THAT(down.err, Contains("Removing the network of aplspawn10 (namespace aplspawn-aplspawn10)"));
    check_no_container_network(e);
    // Back with the same host end names; then netdown removes all three bridges and the table.
    REQUIRE(e.run({"spawn"}).exit_code == 0);
    CHECK(fleet::load_network_record(e.state, a.name)->links[1].host == record->links[1].host);
    REQUIRE(e.run({"stop"}).exit_code == 0);
    CHECK(e.run({"netdown"}).exit_code == 0);
    for (const char* br : {"apltest0", "aplback0", "aplstor0"}) CHECK_FALSE(sys::run({"ip", "link", "show", br}).ok());
    CHECK_FALSE(sys::run({"nft", "list", "table", "ip", "aplspawn_APLTEST"}).ok());
}

TEST_CASE("kill -9 while spawn makes the networks or starts the containers: the next spawn, or "
          "stop, leaves no veth, namespace or bridge port",
          "[fleet][networks][debian]") {
    // Where to kill: as soon as a container's network record exists (its namespace and veths
    // are being made), or once systemd-nspawn processes exist.
    auto when = GENERATE(as<std::string>{}, "network", "nspawn");
    auto then = GENERATE(as<std::string>{}, "spawn", "stop");
    INFO("killed at: " << when << ", then " << then);
    Env e(3);
    std::vector<std::string> argv{aplspawn_binary().string(), "-c", e.cfg_file.string(), "spawn"};
    sys::SpawnOptions o;
    o.log_file = e.t / "interrupted.log";
    sys::Child child = sys::spawn(argv, o);
    auto reached = [&] {
        if (when == "nspawn") return !fleet::list_nspawn_processes().empty();
        std::error_code ec;
        return fs::exists(e.state.dir() / "networks", ec) && !fs::is_empty(e.state.dir() / "networks", ec);
    };
    REQUIRE(eventually(reached, 120s));
    ::kill(child.pid(), SIGKILL);
    child.wait_for(5s);

    if (then == "spawn") {
        auto r = e.run({"spawn"});
        CHECK(r.exit_code == 0);
        CHECK_THAT(r.err, !Contains("File exists"));
        for (const auto& ct : e.c.fleet) CHECK(e.ssh(ct, "ip -br -4 addr show backend").out.find(ct.networks[0].ip.str()) != std::string::npos);
    }
    auto stop = e.run({"stop"});
    CHECK(stop.exit_code == 0);
    check_no_container_network(e);
    // And the fleet comes up again from there.
    CHECK(e.run({"spawn"}).exit_code == 0);
    REQUIRE(e.run({"stop"}).exit_code == 0);
    check_no_container_network(e);
}

TEST_CASE("a network half made by a killed spawn: the next spawn takes it down and makes it whole",
          "[fleet][networks][debian]") {
    Env e(1);
    const auto& ct = e.c.fleet[0];
    auto half = GENERATE(as<std::string>{}, "record only", "name without namespace", "one veth gone",
                         "host end outside the bridge");
    INFO("left: " << half);
    fleet::create_network(e.c, ct, e.state);
    auto rec = fleet::load_network_record(e.state, ct.name);
    REQUIRE(rec);
    REQUIRE(rec->links.size() == 3);
    const std::string ns = sys::netns_path(rec->netns).string();
    if (half == "record only") {
        for (const auto& l : rec->links) sys::run_checked({"ip", "link", "del", l.host});
        sys::run_checked({"umount", ns});
        fs::remove(ns);
    } else if (half == "name without namespace") {
        for (const auto& l : rec->links) sys::run_checked({"ip", "link", "del", l.host});
        sys::run_checked({"umount", ns});  // the file stays, as after a kill between its steps
    } else if (half == "one veth gone") {
        sys::run_checked({"ip", "link", "del", rec->links[2].host});
    } else {
        sys::run_checked({"ip", "link", "set", rec->links[1].host, "nomaster"});
    }
    auto r = e.run({"spawn"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.err, !Contains("File exists"));
    auto inside = e.ssh(ct, "ip -br -4 addr");
    CHECK_THAT(inside.out, Contains("10.78.1.10/24") && Contains("10.78.2.10/24"));
    CHECK(out({"bridge", "link", "show"}).find("master aplback0") != std::string::npos);
    REQUIRE(e.run({"stop"}).exit_code == 0);
    check_no_container_network(e);
}
