// aplspawn status and pids on a real fleet of busybox containers in script mode (started with the
// fleet module's own launcher, as spawn does, in the test's namespaces): every check but ssh
// passes (the busybox image has no sshd); then one thing is broken at a time and status names
// exactly the checks it breaks. The full Debian fleet with SSH is tests/integration/
// health_fleet_test.cpp.
#include "aplspawn/fleet/container_spec.hpp"
#include "aplspawn/fleet/launch.hpp"
#include "aplspawn/fleet/lower.hpp"
#include "aplspawn/fleet/overlay.hpp"
#include "aplspawn/fleet/processes.hpp"
#include "aplspawn/fleet/network.hpp"
#include "integration/fleet_support.hpp"

#include <nlohmann/json.hpp>

#include <signal.h>

#include <set>

using namespace aplspawn;
using namespace aplspawn::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

using Failed = std::set<std::pair<std::string, std::string>>;  // (container or "", check id)

struct ScriptFleet {
    TempDir t;
    fs::path cfg_file;
    config::Config c;
    fleet::StateDir state;
    std::vector<fleet::ContainerRecord> records;

    explicit ScriptFleet(int amount)
        : cfg_file(t / "aplspawn.yaml"),
          c(write_config(t, amount, "  startupScript: /sbin/test-init\n")),
          state(c) {
        REQUIRE(run({"netup"}).exit_code == 0);  // bridge, forwarding, NAT: the network checks pass
        install_image(c, make_test_image(t / "img"));
        fleet::check_upper_filesystem(c, true);
        fs::path lower = fleet::ensure_lower(c, image_of(c), state, false).mount_point;
        auto launcher = fleet::make_detached_launcher();
        for (const auto& ct : c.fleet) {
            auto dirs = fleet::container_dirs(c, *c.find(ct.name));
            fleet::ensure_overlay(lower, dirs);
            fleet::create_network(c, ct, state);  // as spawn: host0 with its address, before start
            auto rec = launcher->start(fleet::launch_spec(ct, dirs, state));
            std::optional<fleet::ProcessRef> leader;
            REQUIRE(eventually([&] { return (leader = fleet::find_leader(rec.nspawn_pid)).has_value(); }));
            rec.leader_pid = leader->pid;
            rec.leader_start_time = leader->start_time;
            rec.ready = true;
            state.save(rec);
            records.push_back(rec);
        }
    }

    sys::RunResult run(std::vector<std::string> args) {
        args.insert(args.begin(), {"-c", cfg_file.string()});
        auto r = testing::aplspawn(args, 120s);
        UNSCOPED_INFO(testing::describe_run("aplspawn " + args[2], r));
        return r;
    }

    // status --json: exit status and the checks that failed.
    std::pair<int, Failed> status() {
        auto r = run({"status", "--json"});
        Failed failed;
        auto j = json::parse(r.out);
        for (const auto& o : j) {
            // the documented shape: container, group, check, ok, title, detail
            REQUIRE(o.size() == 6);
            CHECK(o.at("group") == (o.at("container").is_null() ? json(nullptr) : json("aplspawned")));
            if (!o.at("ok").get<bool>())
                failed.emplace(o.at("container").is_null() ? "" : o.at("container").get<std::string>(),
                               o.at("check").get<std::string>());
        }
        return {r.exit_code, failed};
    }

    Failed no_ssh() const {  // what fails on a healthy busybox fleet: nothing answers SSH
        Failed f;
        for (const auto& ct : c.fleet) f.emplace(ct.name, "ssh");
        return f;
    }
};

Failed operator+(Failed a, const Failed& b) {
    a.insert(b.begin(), b.end());
    return a;
}

}  // namespace

TEST_CASE("status on a running fleet: the original's lines in its order, --json, pids",
          "[health][status]") {
    ScriptFleet f(3);
    auto [code, failed] = f.status();
    CHECK(code == 1);  // the ssh checks
    CHECK(failed == f.no_ssh());

    auto r = f.run({"status"});
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());  // without --json, nothing on stdout
    // Host lines first, in the original's order, then each container in name order.
    std::vector<std::string> expected{
        "‣ [ OK ] Checking if bridge apltest0 exists",
        "‣ [ OK ] Checking if bridge has IP 10.77.0.1/24 assigned",
        "‣ [ OK ] Checking if bridge apltest0 is up",
        "‣ [ OK ] Checking if traffic forwarding is enabled /proc/sys/net/ipv4/ip_forward",
        "‣ [ OK ] Checking NAT table aplspawn_APLTEST",
        "‣ [ OK ] Checking if working directories exist",
        "‣ [ OK ] Checking if image is mounted correctly to loop device " + fleet::inspect_lower(f.c, image_of(f.c).name).source,
        "‣ [ OK ] Checking if loop " + fleet::inspect_lower(f.c, image_of(f.c).name).source + " (image root) is mounted to lower " +
            fleet::lower_dir(f.c, image_of(f.c).name).string(),
    };
    for (const auto& ct : f.c.fleet) {
        std::string ip = ct.ip.str();
        expected.push_back("‣ [ INFO ] Checking container " + ct.name + ", ip " + ip + "/24");
        expected.push_back("‣ [ OK ] Checking machinectl status for container " + ct.name + " (ip " + ip + ")");
        expected.push_back("‣ [ OK ] Checking overlayFS mount");
        expected.push_back("‣ [ OK ] Checking leader process /sbin/test-init");
        expected.push_back("‣ [ OK ] Checking ping to " + ip);
        expected.push_back("‣ [ FAIL ] Checking ssh connection to " + ip + ": ssh test@" + ip);
        expected.push_back("‣ [ OK ] Checking interface host0 has " + ip + "/24");
    }
    std::vector<std::string> got;
    std::string line;
    for (std::istringstream in(r.err); std::getline(in, line);) got.push_back(line);
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) CHECK_THAT(got[i], Catch::StartsWith(expected[i]));

    // pids: the recorded leaders, in name order.
    auto p = f.run({"pids"});
    CHECK(p.exit_code == 0);
    CHECK(p.err.empty());
    std::string want;
    for (const auto& rec : f.records) want += std::to_string(rec.leader_pid) + "\n";
    CHECK(p.out == want);
    auto pj = json::parse(f.run({"pids", "--json"}).out);
    REQUIRE(pj.size() == 3);
    CHECK(pj[1] == json{{"name", "aplspawn11"}, {"group", "aplspawned"}, {"ip", "10.77.0.11"}, {"running", true}, {"pid", f.records[1].leader_pid}});
}

TEST_CASE("status: a killed leader fails that container's machine check, pids says so",
          "[health][status]") {
    ScriptFleet f(3);
    const auto& rec = f.records[1];
    REQUIRE(::kill(rec.leader_pid, SIGKILL) == 0);
    REQUIRE(eventually([&] { return !fleet::is_running(rec); }));
    auto [code, failed] = f.status();
    CHECK(code == 1);
    CHECK(failed == f.no_ssh() + Failed{{"aplspawn11", "machine"},
                                        {"aplspawn11", "leader"},
                                        {"aplspawn11", "ping"},
                                        {"aplspawn11", "interface.host0"}});
    auto r = f.run({"status"});
    CHECK_THAT(r.err, Catch::Contains("‣ [ FAIL ] Checking machinectl status for container aplspawn11 (ip 10.77.0.11): "
                                      "container aplspawn11 is not running (its systemd-nspawn, pid " +
                                      std::to_string(rec.nspawn_pid) + ", is gone)"));
    CHECK_THAT(r.err, Catch::Contains("‣ [ FAIL ] Checking ping to 10.77.0.11: not checked: container is not running"));

    auto p = f.run({"pids"});
    CHECK(p.exit_code == 1);
    CHECK(p.out == std::to_string(f.records[0].leader_pid) + "\n" + std::to_string(f.records[2].leader_pid) + "\n");
    CHECK(p.err == "‣ [ FAIL ] container aplspawn11 is not running (its systemd-nspawn, pid " +
                       std::to_string(rec.nspawn_pid) + ", is gone)\n");
    auto pj = json::parse(f.run({"pids", "--json"}).out);
    CHECK(pj[1]["running"] == false);
    CHECK(pj[1]["pid"].is_null());
}

TEST_CASE("status: an unmounted overlay fails exactly the overlay check", "[health][status]") {
    ScriptFleet f(2);
    auto merged = fleet::container_dirs(f.c, *f.c.find("aplspawn10")).merged;
    sys::run_checked({"umount", "-l", merged.string()});  // the running container keeps its root
    auto [code, failed] = f.status();
    CHECK(code == 1);
    CHECK(failed == f.no_ssh() + Failed{{"aplspawn10", "overlay"}});
    CHECK_THAT(f.run({"status"}).err,
               Catch::Contains("‣ [ FAIL ] Checking overlayFS mount: nothing is mounted at " + merged.string()));

    // Something else mounted there instead: still named, with what is there.
    sys::run_checked({"mount", "-t", "tmpfs", "impostor", merged.string()});
    auto [code2, failed2] = f.status();
    CHECK(failed2 == f.no_ssh() + Failed{{"aplspawn10", "overlay"}});
    CHECK_THAT(f.run({"status"}).err, Catch::Contains("has tmpfs impostor mounted"));
}

TEST_CASE("status: a bridge taken down fails bridge.up, containers are not pinged over it",
          "[health][status]") {
    ScriptFleet f(2);
    sys::run_checked({"ip", "link", "set", "apltest0", "down"});
    auto [code, failed] = f.status();
    CHECK(code == 1);
    CHECK(failed == f.no_ssh() + Failed{{"", "bridge.up"}, {"aplspawn10", "ping"}, {"aplspawn11", "ping"}});
    auto err = f.run({"status"}).err;
    CHECK_THAT(err, Catch::Contains("‣ [ FAIL ] Checking if bridge apltest0 is up"));
    CHECK_THAT(err, Catch::Contains("‣ [ FAIL ] Checking ping to 10.77.0.10: not checked: bridge apltest0 is down"));
    // Up again: back to the healthy state.
    sys::run_checked({"ip", "link", "set", "apltest0", "up"});
    CHECK(eventually([&] { return f.status().second == f.no_ssh(); }, 10s));
}

TEST_CASE("status: an address taken off host0 inside fails the interface check and ping",
          "[health][status][networks]") {
    ScriptFleet f(2);
    sys::run_checked({"ip", "netns", "exec", "aplspawn-aplspawn10", "ip", "addr", "flush", "dev", "host0"});
    auto [code, failed] = f.status();
    CHECK(code == 1);
    CHECK(failed == f.no_ssh() + Failed{{"aplspawn10", "interface.host0"}, {"aplspawn10", "ping"}});
    CHECK_THAT(f.run({"status"}).err,
               Catch::Contains("‣ [ FAIL ] Checking interface host0 has 10.77.0.10/24: it has no IPv4 address"));
    // Down (one status run: ssh to it waits for its timeout).
    sys::run_checked({"ip", "netns", "exec", "aplspawn-aplspawn11", "ip", "link", "set", "host0", "down"});
    auto down = f.run({"status"});
    CHECK_THAT(down.err, Catch::Contains("‣ [ FAIL ] Checking interface host0 has 10.77.0.11/24: it is down"));
}

TEST_CASE("status: a lower layer unmounted under the fleet fails exactly image.lower",
          "[health][status]") {
    ScriptFleet f(1);
    auto loop = fleet::inspect_lower(f.c, image_of(f.c).name).source;
    // Lazily: the overlays keep the filesystem (and so the loop device) alive.
    sys::run_checked({"umount", "-l", fleet::lower_dir(f.c, image_of(f.c).name).string()});
    auto [code, failed] = f.status();
    CHECK(code == 1);
    CHECK(failed == f.no_ssh() + Failed{{"", "image.lower"}});
    auto err = f.run({"status"}).err;
    CHECK_THAT(err, Catch::Contains("‣ [ OK ] Checking if image is mounted correctly to loop device " + loop));
    CHECK_THAT(err, Catch::Contains("‣ [ FAIL ] Checking if loop " + loop + " (image root) is mounted to lower " +
                                    fleet::lower_dir(f.c, image_of(f.c).name).string() + ": nothing is mounted at"));
}

TEST_CASE("status and pids with nothing started: every container fails, fast", "[health][status]") {
    TempDir t;
    write_config(t, 3);
    auto start = std::chrono::steady_clock::now();
    auto r = testing::aplspawn({"-c", (t / "aplspawn.yaml").string(), "status", "--json"});
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    CHECK(r.exit_code == 1);
    auto j = json::parse(r.out);
    CHECK(j.size() == 8 + 3 * 6);
    for (const auto& o : j) CHECK(o["ok"] == false);  // no bridge, no directories, nothing runs
    auto p = testing::aplspawn({"-c", (t / "aplspawn.yaml").string(), "pids"});
    CHECK(p.exit_code == 1);
    CHECK(p.out.empty());
    CHECK_THAT(p.err, Catch::Contains("container aplspawn12 is not running (no state record: stopped, or never started)"));
}
