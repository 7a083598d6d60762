// netup / netdown through the real binary, in the test's own network namespace (its "host"):
// idempotence byte for byte, a real TCP connection through the NAT, what survives netdown, the
// refusals, --dry-run.
#include "aplspawn/config.hpp"
#include "aplspawn/fleet/state.hpp"
#include "integration/fleet_support.hpp"
#include "support/testing.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>

using namespace aplspawn;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// The base config: bridge apltest0 10.77.0.1/24, table aplspawn_APLTEST.
struct Fleet {
    testing::TempDir dir;
    fs::path config = dir / "aplspawn.yaml";
    Fleet() { testing::write_file(config, testing::base_config(dir.path())); }
    fs::path state() const { return dir / "work/state"; }
    sys::RunResult run(const std::string& op, std::vector<std::string> extra = {}) const {
        std::vector<std::string> args{"-c", config.string(), op};
        args.insert(args.end(), extra.begin(), extra.end());
        return testing::aplspawn(args, 60s);
    }
};

std::string sh(const std::vector<std::string>& argv) { return sys::run_checked(argv).out; }

// Everything netup could change on the host, as text.
struct HostNet {
    std::string links, addresses, routes, ruleset, ip_forward;
    friend bool operator==(const HostNet&, const HostNet&) = default;
};

HostNet snapshot() {
    return HostNet{sh({"ip", "-br", "link"}), sh({"ip", "-br", "addr"}), sh({"ip", "route"}),
                   sh({"nft", "list", "ruleset"}), sys::read_file("/proc/sys/net/ipv4/ip_forward")};
}

int count(std::string_view text, std::string_view what) {
    int n = 0;
    for (auto pos = text.find(what); pos != std::string_view::npos; pos = text.find(what, pos + 1)) ++n;
    return n;
}

int lines(std::string_view text) { return count(text, "\n"); }

// "7" from "7: apltest0: <...": /sys/class/net shows the machine's namespace, not ours.
std::string ifindex(const std::string& name) {
    std::string line = sh({"ip", "-o", "link", "show", name});
    return line.substr(0, line.find(':'));
}

}  // namespace

TEST_CASE("netup twice leaves the same host byte for byte, netdown twice leaves it clean", "[net][netup]") {
    Fleet f;
    const HostNet before = snapshot();
    REQUIRE(before.ip_forward == "0\n");

    auto up = f.run("netup");
    INFO(up.err);
    REQUIRE(up.ok());
    CHECK(up.err ==
          "‣ [ OK ] Configuring bridge apltest0\n"
          "‣ [ OK ] Enabling traffic forwarding system-wide\n"
          "‣ [ OK ] Configuring nftables forwarding rules in table ip aplspawn_APLTEST\n"
          "‣ [ OK ] Configuring nftables NAT rules in table ip aplspawn_APLTEST\n");
    CHECK(up.out.empty());
    const HostNet after = snapshot();
    CHECK(after.addresses.find("apltest0") != std::string::npos);
    CHECK(after.addresses.find("10.77.0.1/24") != std::string::npos);
    CHECK(sh({"ip", "-d", "link", "show", "apltest0"}).find("bridge") != std::string::npos);
    CHECK(sh({"ip", "-o", "link", "show", "apltest0"}).find(",UP") != std::string::npos);
    CHECK(after.ip_forward == "1\n");
    CHECK(after.ruleset.find("table ip aplspawn_APLTEST") != std::string::npos);
    CHECK(after.ruleset.find("ip saddr 10.77.0.0/24 oifname != \"apltest0\" masquerade") != std::string::npos);
    CHECK(fs::exists(f.state() / "net.json"));

    auto again = f.run("netup");
    INFO(again.err);
    REQUIRE(again.ok());
    CHECK(count(again.err, "(already so)") == 4);
    CHECK(lines(again.err) == 4);
    CHECK(snapshot() == after);

    auto down = f.run("netdown");
    INFO(down.err);
    REQUIRE(down.ok());
    CHECK(down.err ==
          "‣ [ OK ] Removing nftables table ip aplspawn_APLTEST\n"
          "‣ [ OK ] Restoring traffic forwarding system-wide (net.ipv4.ip_forward 0)\n"
          "‣ [ OK ] Removing bridge apltest0\n");
    CHECK(snapshot() == before);
    CHECK_FALSE(fs::exists(f.state() / "net.json"));

    auto down2 = f.run("netdown");
    INFO(down2.err);
    REQUIRE(down2.ok());
    CHECK(count(down2.err, "(already so)") == 3);
    CHECK(lines(down2.err) == 3);
    CHECK(snapshot() == before);
}

TEST_CASE("a TCP connection from the bridge leaves through the NAT with the host's address", "[net][netup][nat]") {
    Fleet f;
    REQUIRE(f.run("netup").ok());

    // client: a namespace on the bridge, like a container. outside: a namespace reached through
    // the host over a second veth, with no route back to the fleet's subnet.
    sh({"ip", "netns", "add", "client"});
    sh({"ip", "netns", "add", "outside"});
    sh({"ip", "link", "add", "vc-h", "type", "veth", "peer", "name", "vc-c", "netns", "client"});
    sh({"ip", "link", "set", "vc-h", "master", "apltest0", "up"});
    sh({"ip", "-n", "client", "addr", "add", "10.77.0.10/24", "dev", "vc-c"});
    sh({"ip", "-n", "client", "link", "set", "vc-c", "up"});
    sh({"ip", "-n", "client", "route", "add", "default", "via", "10.77.0.1"});
    sh({"ip", "link", "add", "vo-h", "type", "veth", "peer", "name", "vo-o", "netns", "outside"});
    sh({"ip", "addr", "add", "198.51.100.1/24", "dev", "vo-h"});
    sh({"ip", "link", "set", "vo-h", "up"});
    sh({"ip", "-n", "outside", "addr", "add", "198.51.100.2/24", "dev", "vo-o"});
    sh({"ip", "-n", "outside", "link", "set", "vo-o", "up"});

    // The server answers every connection with the address it came from.
    sys::Child server = sys::spawn({"ip", "netns", "exec", "outside", "/usr/bin/python3", "-c",
                                    "import socket\n"
                                    "s = socket.socket()\n"
                                    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                                    "s.bind(('198.51.100.2', 8080)); s.listen(8)\n"
                                    "while True:\n"
                                    "    c, peer = s.accept(); c.sendall(peer[0].encode() + b'\\n'); c.close()\n"});
    // The client tries for a bounded time (the server may still be starting).
    auto connect = [](double seconds) {
        return sys::run({"ip", "netns", "exec", "client", "/usr/bin/python3", "-c",
                         fmt::format("import socket, sys, time\n"
                                     "end = time.time() + {}\n"
                                     "while True:\n"
                                     "    try:\n"
                                     "        c = socket.create_connection(('198.51.100.2', 8080), timeout=1)\n"
                                     "        print(c.recv(100).decode().strip()); sys.exit(0)\n"
                                     "    except OSError as e:\n"
                                     "        if time.time() > end: print(e); sys.exit(1)\n"
                                     "        time.sleep(0.1)\n",
                                     seconds)},
                        {.timeout = 20s});
    };
    auto r = connect(10);
    INFO(r.out << r.err);
    REQUIRE(r.ok());
    CHECK(r.out == "198.51.100.1\n");  // the host's address, not 10.77.0.10

    // Without aplspawn's table the same connection cannot work: the outside has no route back.
    sh({"nft", "delete", "table", "ip", "aplspawn_APLTEST"});
    auto without = connect(2);
    CHECK_FALSE(without.ok());
    CHECK(without.out.find("198.51.100.1") == std::string::npos);
}

TEST_CASE("a foreign nftables table and a pre-existing bridge survive netup and netdown", "[net][netup]") {
    Fleet f;
    sh({"ip", "link", "add", "apltest0", "type", "bridge"});  // down, no address: the user's
    sh({"nft", "add", "table", "inet", "mine"});
    sh({"nft", "add", "chain", "inet", "mine", "input", "{ type filter hook input priority 0; policy accept; }"});
    sh({"nft", "add", "rule", "inet", "mine", "input", "tcp", "dport", "22", "counter", "accept"});
    const HostNet before = snapshot();
    const std::string index_before = ifindex("apltest0");

    auto up = f.run("netup");
    INFO(up.err);
    REQUIRE(up.ok());
    CHECK(sh({"ip", "-br", "addr", "show", "apltest0"}).find("10.77.0.1/24") != std::string::npos);
    CHECK(ifindex("apltest0") == index_before);  // used as it is
    CHECK(sh({"nft", "list", "table", "inet", "mine"}).find("tcp dport 22 counter") != std::string::npos);

    auto down = f.run("netdown");
    INFO(down.err);
    REQUIRE(down.ok());
    CHECK_THAT(down.err, Catch::Contains("Removing address 10.77.0.1/24 from bridge apltest0") &&
                             Catch::Contains("Setting bridge apltest0 down"));
    // The bridge is still there, down and without the address, the foreign table byte for byte.
    CHECK(ifindex("apltest0") == index_before);
    CHECK(snapshot() == before);
}

TEST_CASE("a bridge that was already up with the address keeps both after netdown", "[net][netup]") {
    Fleet f;
    sh({"ip", "link", "add", "apltest0", "type", "bridge"});
    sh({"ip", "addr", "add", "10.77.0.1/24", "dev", "apltest0"});
    sh({"ip", "link", "set", "apltest0", "up"});
    const HostNet before = snapshot();

    REQUIRE(f.run("netup").ok());
    auto down = f.run("netdown");
    INFO(down.err);
    REQUIRE(down.ok());
    CHECK(snapshot() == before);
}

TEST_CASE("a link of the bridge's name that is not a bridge is a clear error and changes nothing", "[net][netup]") {
    Fleet f;
    sh({"ip", "link", "add", "apltest0", "type", "veth", "peer", "name", "apltest0p"});
    const HostNet before = snapshot();

    auto up = f.run("netup");
    CHECK(up.exit_code == 1);
    CHECK(up.err == "‣ [ FAIL ] bridge apltest0: a link of that name exists and is not a bridge (it is of kind "
                    "veth); remove it or choose another bridge.name\n");
    CHECK(snapshot() == before);
    CHECK_FALSE(fs::exists(f.state()));
}

TEST_CASE("netup and netdown with --dry-run print the plan and change nothing", "[net][netup][dry-run]") {
    Fleet f;
    const HostNet clean = snapshot();

    auto plan = f.run("netup", {"--dry-run"});
    INFO(plan.err);
    REQUIRE(plan.ok());
    CHECK_THAT(plan.err, Catch::Contains("‣ [ PLAN ] Create bridge apltest0") &&
                             Catch::Contains("‣ [ PLAN ] Add address 10.77.0.1/24 to bridge apltest0") &&
                             Catch::Contains("‣ [ PLAN ] Enable traffic forwarding") &&
                             Catch::Contains("‣ [ PLAN ] Write nftables table ip aplspawn_APLTEST"));
    CHECK(snapshot() == clean);
    CHECK_FALSE(fs::exists(f.dir / "work"));

    REQUIRE(f.run("netup").ok());
    const HostNet up = snapshot();
    const std::string record = sys::read_file(f.state() / "net.json");

    auto again = f.run("netup", {"--dry-run"});
    CHECK(count(again.err, "(already so)") == 4);
    CHECK(again.err.find("PLAN") == std::string::npos);

    auto down = f.run("netdown", {"--dry-run"});
    INFO(down.err);
    REQUIRE(down.ok());
    CHECK_THAT(down.err, Catch::Contains("‣ [ PLAN ] Delete nftables table ip aplspawn_APLTEST") &&
                             Catch::Contains("‣ [ PLAN ] Set net.ipv4.ip_forward back to 0") &&
                             Catch::Contains("‣ [ PLAN ] Delete bridge apltest0"));
    CHECK(snapshot() == up);
    CHECK(sys::read_file(f.state() / "net.json") == record);
}

TEST_CASE("netup rewrites aplspawn's table when it was changed by hand", "[net][netup]") {
    Fleet f;
    REQUIRE(f.run("netup").ok());
    const HostNet up = snapshot();
    sh({"nft", "add", "rule", "ip", "aplspawn_APLTEST", "forward", "ip", "daddr", "192.0.2.1", "drop"});
    REQUIRE(snapshot() != up);

    auto again = f.run("netup");
    INFO(again.err);
    REQUIRE(again.ok());
    CHECK_THAT(again.err, Catch::Contains("‣ [ OK ] Configuring nftables forwarding rules in table ip aplspawn_APLTEST\n") &&
                              Catch::Contains("NAT rules in table ip aplspawn_APLTEST (already so)"));
    CHECK(snapshot() == up);
}

TEST_CASE("netdown refuses while the fleet runs, unless --force", "[net][netdown]") {
    Fleet f;
    REQUIRE(f.run("netup").ok());
    const HostNet up = snapshot();

    // A record of a running container (its "nspawn" is a sleep of ours).
    sys::Child sleeper = sys::spawn({"sleep", "60"});
    auto cfg = config::load(f.config);
    fleet::ContainerRecord rec;
    rec.name = cfg.fleet.at(0).name;
    rec.ip = cfg.fleet.at(0).ip.str();
    rec.set_nspawn(*fleet::process_ref(sleeper.pid()));
    fleet::StateDir(cfg).save(rec);

    auto refused = f.run("netdown");
    CHECK(refused.exit_code == 1);
    CHECK(lines(refused.err) == 1);
    CHECK_THAT(refused.err, Catch::StartsWith("‣ [ FAIL ] netdown: 1 container of the fleet is running (aplspawn10)") &&
                                Catch::Contains("--force"));
    CHECK(snapshot() == up);

    auto forced = f.run("netdown", {"--force"});
    INFO(forced.err);
    CHECK(forced.ok());
    CHECK_THAT(forced.err, Catch::Contains("‣ [ INFO ] --force") && Catch::Contains("Removing bridge apltest0"));
    CHECK(sh({"ip", "-br", "link"}).find("apltest0") == std::string::npos);
}

TEST_CASE("a host FORWARD chain with policy drop gets one INFO line, and is left alone", "[net][netup]") {
    Fleet f;
    sh({"nft", "add", "table", "ip", "filter"});
    sh({"nft", "add", "chain", "ip", "filter", "FORWARD",
        "{ type filter hook forward priority 0; policy drop; }"});
    const std::string filter_before = sh({"nft", "list", "table", "ip", "filter"});

    auto up = f.run("netup");
    INFO(up.err);
    REQUIRE(up.ok());
    CHECK(count(up.err, "‣ [ INFO ]") == 1);
    CHECK_THAT(up.err, Catch::Contains("chain FORWARD, policy drop") &&
                           Catch::Contains("iptables -I FORWARD -i apltest0 -j ACCEPT"));
    CHECK(sh({"nft", "list", "table", "ip", "filter"}) == filter_before);

    // Once the user allowed the bridge there, the note goes away.
    sh({"nft", "insert", "rule", "ip", "filter", "FORWARD", "iifname", "apltest0", "accept"});
    auto again = f.run("netup");
    CHECK(count(again.err, "INFO") == 0);
}

namespace {

// The base config with two networks: backend (isolated) and storage (NATed).
constexpr std::string_view kNetworks = R"(networks:
  backend: {bridge: aplback0, address: 10.78.1.1, netPrefix: 24}
  storage: {bridge: aplstor0, address: 10.78.2.1, netPrefix: 24, nat: true}
)";

// A namespace standing in for a container: one veth on `bridge`, its address, a default route
// via the host's address on that bridge.
void machine(const std::string& name, const std::string& bridge, const std::string& cidr, const std::string& gw) {
    sh({"ip", "netns", "add", name});
    sh({"ip", "link", "add", "h-" + name, "type", "veth", "peer", "name", "eth0", "netns", name});
    sh({"ip", "link", "set", "h-" + name, "master", bridge, "up"});
    sh({"ip", "-n", name, "addr", "add", cidr, "dev", "eth0"});
    sh({"ip", "-n", name, "link", "set", "eth0", "up"});
    sh({"ip", "-n", name, "link", "set", "lo", "up"});
    sh({"ip", "-n", name, "route", "add", "default", "via", gw});
}

// One ICMP echo from the namespace, answered within a second.
bool ping_from(const std::string& ns, const std::string& ip) {
    return sys::run({"ip", "netns", "exec", ns, "busybox", "ping", "-c1", "-W1", ip}).ok();
}

}  // namespace

TEST_CASE("networks: netup makes every bridge, an isolated one forwards nothing in or out (as "
          "nftables shows it), netdown removes them all",
          "[net][netup][networks]") {
    Fleet f;
    testing::write_file(f.config, testing::base_config(f.dir.path()) + std::string(kNetworks));
    auto up = f.run("netup");
    INFO(up.err);
    REQUIRE(up.ok());
    CHECK_THAT(up.err, Catch::Contains("‣ [ OK ] Configuring bridge apltest0\n") &&
                           Catch::Contains("‣ [ OK ] Configuring bridge aplback0 (network backend, isolated)") &&
                           Catch::Contains("‣ [ OK ] Configuring bridge aplstor0 (network storage, NAT)"));
    CHECK_THAT(sh({"ip", "-br", "addr", "show", "aplback0"}), Catch::Contains("10.78.1.1/24"));
    // The table as nftables lists it: the isolation first, then the NATed bridges.
    CHECK(sh({"nft", "list", "table", "ip", "aplspawn_APLTEST"}) ==
          "table ip aplspawn_APLTEST {\n"
          "\tchain forward {\n"
          "\t\ttype filter hook forward priority filter; policy accept;\n"
          "\t\tiifname \"aplback0\" oifname != \"aplback0\" drop\n"
          "\t\toifname \"aplback0\" iifname != \"aplback0\" drop\n"
          "\t\tiifname \"apltest0\" accept\n"
          "\t\toifname \"apltest0\" ct state established,related accept\n"
          "\t\tiifname \"aplstor0\" accept\n"
          "\t\toifname \"aplstor0\" ct state established,related accept\n"
          "\t}\n"
          "\n"
          "\tchain postrouting {\n"
          "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
          "\t\tip saddr 10.77.0.0/24 oifname != \"apltest0\" masquerade\n"
          "\t\tip saddr 10.78.2.0/24 oifname != \"aplstor0\" masquerade\n"
          "\t}\n"
          "}\n");
    CHECK_THAT(sys::read_file(f.state() / "net.json"), Catch::Contains("\"network\": \"backend\""));
    // Twice: nothing changes.
    auto before = snapshot();
    auto again = f.run("netup");
    CHECK(count(again.err, "(already so)") == 6);
    CHECK(snapshot() == before);

    // Machines: web on the fleet's bridge, db and cache on backend, store on storage, and an
    // "outside" beyond a link of the host's own.
    machine("web", "apltest0", "10.77.0.20/24", "10.77.0.1");
    machine("db", "aplback0", "10.78.1.30/24", "10.78.1.1");
    machine("cache", "aplback0", "10.78.1.31/24", "10.78.1.1");
    machine("store", "aplstor0", "10.78.2.40/24", "10.78.2.1");
    sh({"ip", "netns", "add", "outside"});
    sh({"ip", "link", "add", "vo-h", "type", "veth", "peer", "name", "vo-o", "netns", "outside"});
    sh({"ip", "addr", "add", "198.51.100.1/24", "dev", "vo-h"});
    sh({"ip", "link", "set", "vo-h", "up"});
    sh({"ip", "-n", "outside", "addr", "add", "198.51.100.2/24", "dev", "vo-o"});
    sh({"ip", "-n", "outside", "link", "set", "vo-o", "up"});

    CHECK(testing::eventually([] { return ping_from("db", "10.78.1.31"); }, 5s));  // bridged: fine
    CHECK(ping_from("db", "10.78.1.1"));        // the host's own address on backend
    CHECK_FALSE(ping_from("web", "10.78.1.30"));  // into the isolated network: dropped
    CHECK_FALSE(ping_from("db", "10.77.0.20"));   // out of it to another network: dropped
    CHECK_FALSE(ping_from("db", "198.51.100.2"));  // nor outside through it
    CHECK_FALSE(ping_from("db", "10.78.2.40"));
    CHECK(ping_from("web", "198.51.100.2"));      // the NATed networks reach out
    CHECK(ping_from("store", "198.51.100.2"));
    CHECK(ping_from("web", "10.78.2.40"));        // and each other
    // Without aplspawn's table the isolation is gone: the drops above are its doing.
    sh({"nft", "delete", "table", "ip", "aplspawn_APLTEST"});
    CHECK(ping_from("web", "10.78.1.30"));
    REQUIRE(f.run("netup").ok());
    CHECK_FALSE(ping_from("web", "10.78.1.30"));
    for (const char* ns : {"web", "db", "cache", "store", "outside"}) sh({"ip", "netns", "delete", ns});

    auto down = f.run("netdown");
    INFO(down.err);
    CHECK(down.ok());
    for (const char* b : {"apltest0", "aplback0", "aplstor0"}) CHECK_FALSE(sys::run({"ip", "link", "show", b}).ok());
    CHECK_FALSE(fs::exists(f.state() / "net.json"));
}

TEST_CASE("networks: netup refuses a record of a network the config no longer has", "[net][netup][networks]") {
    Fleet f;
    testing::write_file(f.config, testing::base_config(f.dir.path()) + std::string(kNetworks));
    REQUIRE(f.run("netup").ok());
    testing::write_file(f.config, testing::base_config(f.dir.path()));
    auto r = f.run("netup");
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::Contains("bridge aplback0 (network backend), which the config does not have") &&
                          Catch::Contains("netdown"));
    // netdown with the record removes every bridge it names, whatever the config says.
    REQUIRE(f.run("netdown").ok());
    CHECK_FALSE(sys::run({"ip", "link", "show", "aplback0"}).ok());
    CHECK_FALSE(sys::run({"ip", "link", "show", "aplstor0"}).ok());
    // A network added to a fleet that is up: netup adds just that.
    REQUIRE(f.run("netup").ok());
    testing::write_file(f.config, testing::base_config(f.dir.path()) + std::string(kNetworks));
    auto add = f.run("netup");
    CHECK(add.ok());
    CHECK_THAT(add.err, Catch::Contains("‣ [ OK ] Configuring bridge apltest0 (already so)") &&
                            Catch::Contains("‣ [ OK ] Configuring bridge aplback0 (network backend, isolated)\n"));
    REQUIRE(f.run("netdown").ok());
    CHECK_FALSE(sys::run({"ip", "link", "show", "aplback0"}).ok());
}
