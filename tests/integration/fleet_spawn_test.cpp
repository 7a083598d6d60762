// spawn / stop / cleanup driven through the real binary, on the real Debian image (boot and
// script mode), in the test's own namespaces: containers answer SSH with strict host key
// checking, their static IPs answer ping, every operation is safe twice, an interrupted spawn
// (kill -9) is repaired by the next spawn or stop, a container that never becomes ready fails
// alone with its log tail, an image full of symlinks to host paths writes nothing on the host.
#include "aplspawn/fleet/lower.hpp"
#include "aplspawn/fleet/network.hpp"
#include "aplspawn/fleet/observe.hpp"
#include "aplspawn/fleet/processes.hpp"
#include "aplspawn/fleet/ssh.hpp"
#include "aplspawn/sys/cgroup.hpp"
#include "aplspawn/sys/loop.hpp"
#include "aplspawn/sys/mount.hpp"
#include "aplspawn/sys/netns.hpp"
#include "integration/fleet_support.hpp"

#include <signal.h>

#include <set>
#include <thread>

using namespace aplspawn;
using namespace aplspawn::testing;
using namespace std::chrono_literals;

namespace {

struct Env {
    TempDir t;
    fs::path cfg_file;
    config::Config c;
    fleet::StateDir state;
    Env(int amount, std::string_view extra = "", const fs::path& image = {})
        : cfg_file(t / "aplspawn.yaml"), c(write_config(t, amount, extra)), state(c) {
        install_image(c, image.empty() ? default_image() : image);
        auto r = run({"netup"});
        REQUIRE(r.exit_code == 0);
    }
    sys::RunResult run(std::vector<std::string> args, std::chrono::seconds timeout = 280s) {
        args.insert(args.begin(), {"-c", cfg_file.string()});
        auto r = testing::aplspawn(args, timeout);
        UNSCOPED_INFO(testing::describe_run("aplspawn " + args.back(), r));
        return r;
    }
    sys::RunResult ssh(const std::string& ip, std::vector<std::string> cmd) {
        for (const auto& ct : c.fleet)
            if (ct.ip.str() == ip) return fleet::ssh_run(fleet::ssh_target(c, ct), cmd, 20s);
        FAIL("no container with address " << ip);
        return {};
    }
};

// Nothing of the fleet left on the host: no nspawn, no overlay or lower mount, no loop device
// of the image, no network namespace, veth or bridge port.
void check_nothing_left(const Env& e) {
    CHECK(fleet::list_nspawn_processes().empty());
    CHECK(sys::run_checked({"ip", "netns", "list"}).out.empty());
    CHECK(sys::run_checked({"ip", "-o", "link", "show", "type", "veth"}).out.empty());
    CHECK(sys::run_checked({"bridge", "link", "show"}).out.empty());
    CHECK((!fs::exists(e.state.dir() / "networks") || fs::is_empty(e.state.dir() / "networks")));
    auto view = fleet::observe(e.c, e.state);
    CHECK_FALSE(view.any_busy());
    CHECK_FALSE(fleet::inspect_lower(e.c, image_of(e.c).name).mounted);
    for (const auto& m : sys::read_mountinfo()) CHECK(m.fstype != "overlay");
}

std::size_t position(const std::string& text, const std::string& what) {
    auto at = text.find(what);
    INFO("looking for: " << what);
    CHECK(at != std::string::npos);
    return at;
}

}  // namespace

TEST_CASE("spawn boots a fleet that answers SSH, spawn twice, stop keeps data, stop twice, cleanup",
          "[fleet][spawn][debian]") {
    Env e(3);
    auto up = e.run({"spawn"});
    REQUIRE(up.exit_code == 0);
    // The original's lines, in name order although the work ran in parallel.
    auto a = position(up.err, "Trying to start container aplspawn10");
    auto b = position(up.err, "Trying to start container aplspawn11");
    auto cc = position(up.err, "Trying to start container aplspawn12");
    CHECK((a < b && b < cc));
    position(up.err, "Trying to mount overlayFS, merged path is " + (e.t / "machines/aplspawn10").string());
    position(up.err, "Checking container aplspawn11, ip 10.77.0.11/24");
    position(up.err, "Checking ssh connection to 10.77.0.12");
    position(up.err, "as lower overlayFS layer");
    CHECK(fs::exists(common_of(e.c).ssh_private_key));  // the fleet key was generated

    for (const auto& ct : e.c.fleet) {
        auto ip = ct.ip.str();
        CHECK(pings(ip));
        auto who = e.ssh(ip, {"id -un; hostname; systemctl is-system-running --wait || true"});
        CHECK(who.ok());
        CHECK_THAT(who.out, Catch::StartsWith("test\n" + ct.name + "\n"));
        // Strict checking against the fleet's known_hosts: its lines are this container's keys.
        CHECK_THAT(sys::read_file(e.state.known_hosts()), Catch::Contains(ip + " ssh-ed25519 "));
    }
    // Each container's systemd has a cgroup of its own (none is handed out without systemd).
    std::set<std::string> cgroups;
    for (const auto& ct : e.c.fleet) {
        auto r = e.state.load(ct.name);
        REQUIRE(r);
        auto cg = sys::cgroup_of(r->leader_pid);
        CHECK_THAT(cg, Catch::Contains("/aplspawn/" + ct.name + "."));
        cgroups.insert(cg);
    }
    CHECK(cgroups.size() == e.c.fleet.size());
    REQUIRE(e.ssh("10.77.0.10", {"echo kept > ~/data.txt"}).ok());
    auto rec = e.state.load("aplspawn10");
    REQUIRE(rec);
    CHECK(rec->ready);
    CHECK(rec->launcher == "detached");
    CHECK(rec->leader_pid > 0);

    auto again = e.run({"spawn"});
    CHECK(again.exit_code == 0);
    CHECK_THAT(again.err, Catch::Contains("Container with pid " + std::to_string(rec->nspawn_pid) +
                                          " was started (already so)"));
    CHECK(e.state.load("aplspawn10")->nspawn_pid == rec->nspawn_pid);

    auto loop = fleet::inspect_lower(e.c, image_of(e.c).name).loop->device;
    auto down = e.run({"stop"});
    CHECK(down.exit_code == 0);
    CHECK_THAT(down.err, Catch::Contains("Stopping container aplspawn12") &&
                             Catch::Contains("Umounting lower overlayFS layer"));
    check_nothing_left(e);
    CHECK(eventually([&] { return !sys::loop_status(loop); }));
    // Their cgroups went with them (other namespaces may have fleets of their own under aplspawn/).
    for (const auto& cg : cgroups) {
        auto own = fs::path(cg).relative_path();  // aplspawn/NAME.ID/payload/...
        own = *own.begin() / *std::next(own.begin());
        for (const auto& root : sys::systemd_cgroup_mounts()) CHECK_FALSE(fs::exists(root / own));
    }
    // Halted cleanly by its own systemd, not killed: well within the default grace time.
    CHECK_THAT(sys::read_file(e.state.log_path("aplspawn10")), Catch::Contains("Halting") ||
                                                                 Catch::Contains("reboot: System halted") ||
                                                                 Catch::Contains("Container aplspawn10 has been shut down"));

    auto twice = e.run({"stop"});
    CHECK(twice.exit_code == 0);
    CHECK_THAT(twice.err, Catch::Contains("Stopping container aplspawn10 (already so)") &&
                              !Catch::Contains("(loop"));

    // Back again, with the data.
    REQUIRE(e.run({"spawn"}).exit_code == 0);
    auto data = e.ssh("10.77.0.10", {"cat", "data.txt"});
    CHECK(data.out == "kept\n");
    REQUIRE(e.run({"stop"}).exit_code == 0);

    auto clean = e.run({"cleanup"});
    CHECK(clean.exit_code == 0);
    CHECK_THAT(clean.err, Catch::Contains("Removing content of working directories"));
    CHECK_FALSE(fs::exists(e.c.paths.upper / "aplspawn10"));
    CHECK_FALSE(fs::exists(common_of(e.c).home_path / "aplspawn11"));
    CHECK_FALSE(fs::exists(e.state.known_hosts()));
    CHECK(fs::exists(e.c.paths.local_store / image_of(e.c).file_name));
    CHECK_THAT(e.run({"cleanup"}).err, Catch::Contains("Removing content of working directories (already so)"));
}

TEST_CASE("cleanup refuses while the fleet runs, --dry-run changes nothing", "[fleet][spawn][debian]") {
    Env e(1);
    auto plan = e.run({"spawn", "--dry-run"});
    CHECK(plan.exit_code == 0);
    CHECK_THAT(plan.err, Catch::Contains("[ PLAN ]") && Catch::Contains("aplspawn10"));
    CHECK_FALSE(fs::exists(common_of(e.c).ssh_private_key));
    CHECK_FALSE(fleet::inspect_lower(e.c, image_of(e.c).name).mounted);
    CHECK(fleet::list_nspawn_processes().empty());

    REQUIRE(e.run({"spawn"}).exit_code == 0);
    auto refused = e.run({"cleanup"});
    CHECK(refused.exit_code == 1);
    CHECK_THAT(refused.err, Catch::Contains("run aplspawn stop first"));
    CHECK(fs::exists(e.c.paths.upper / "aplspawn10"));
    auto stop_plan = e.run({"stop", "--dry-run"});
    CHECK(stop_plan.exit_code == 0);
    CHECK(fleet::observe(e.c, e.state).any_running());
    REQUIRE(e.run({"stop"}).exit_code == 0);
    check_nothing_left(e);
}

TEST_CASE("script mode with the shipped starter: sshd as PID 1's child, SIGTERM stops it",
          "[fleet][spawn][debian]") {
    TempDir starter;
    fs::copy(fs::path(APLSPAWN_SOURCE_DIR) / "starter", starter.path(), fs::copy_options::recursive);
    std::string extra = fmt::format(
        "  bindHost: {0}\n  variablesFile: {0}/variables.sh\n  bindContainer: /root/starter\n"
        "  startupScript: /root/starter/startup.sh\n",
        starter.path().string());
    Env e(2, extra);
    auto up = e.run({"spawn"});
    REQUIRE(up.exit_code == 0);
    CHECK_THAT(up.err, Catch::Contains("Generating variables for container"));
    CHECK_THAT(sys::read_file(starter / "variables.sh"), Catch::Contains("userName=\"test\""));
    for (const auto& ct : e.c.fleet) {
        auto r = e.ssh(ct.ip.str(), {"id -un; tr '\\0' ' ' < /proc/1/cmdline; echo"});
        CHECK(r.ok());
        CHECK_THAT(r.out, Catch::StartsWith("test\n") && Catch::Contains("/root/starter/startup.sh"));
        CHECK(pings(ct.ip.str()));
    }
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(e.run({"stop", "--timeout", "20"}).exit_code == 0);
    CHECK(std::chrono::steady_clock::now() - t0 < 15s);  // the script's trap, not the kill
    CHECK_THAT(sys::read_file(e.state.log_path("aplspawn10")), Catch::Contains("startup.sh: stopping"));
    check_nothing_left(e);
}

TEST_CASE("kill -9 during spawn: the next spawn, or stop, brings the host to a consistent state",
          "[fleet][spawn][debian]") {
    Env e(3);
    auto interrupted = [&] {
        std::vector<std::string> argv{aplspawn_binary().string(), "-c", e.cfg_file.string(), "spawn"};
        sys::SpawnOptions o;
        o.log_file = e.t / "interrupted.log";
        sys::Child child = sys::spawn(argv, o);
        // Kill it once containers are starting (records or nspawn processes exist).
        REQUIRE(eventually([&] { return !fleet::list_nspawn_processes().empty(); }, 120s));
        ::kill(child.pid(), SIGKILL);
        child.wait_for(5s);
    };
    SECTION("then spawn") {
        interrupted();
        auto r = e.run({"spawn"});
        CHECK(r.exit_code == 0);
        for (const auto& ct : e.c.fleet) CHECK(e.ssh(ct.ip.str(), {"true"}).ok());
        CHECK(fleet::list_nspawn_processes().size() == 3);
        REQUIRE(e.run({"stop"}).exit_code == 0);
        check_nothing_left(e);
    }
    SECTION("then stop") {
        interrupted();
        // Containers still early in their boot: their systemd drops a halt request that comes
        // before its handlers; stop repeats it rather than waiting out the 30 s grace to kill.
        auto t0 = std::chrono::steady_clock::now();
        auto r = e.run({"stop"});
        CHECK(r.exit_code == 0);
        CHECK(std::chrono::steady_clock::now() - t0 < 20s);
        check_nothing_left(e);
        CHECK(e.run({"spawn"}).exit_code == 0);
        REQUIRE(e.run({"stop"}).exit_code == 0);
    }
}

TEST_CASE("spawn takes down what an interrupted run left of a container's network, and never a "
          "namespace of its name that is not the fleet's",
          "[fleet][spawn][debian][networks]") {
    Env e(1);
    const auto& ct = e.c.fleet[0];
    // As if a spawn was killed while it made the network: the record, the namespace, a host end.
    fleet::create_network(e.c, ct, e.state);
    auto left = fleet::load_network_record(e.state, ct.name);
    REQUIRE(left);
    auto r = e.run({"spawn"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.err, Catch::Contains("Removing the network an interrupted run left of aplspawn10"));
    CHECK(e.ssh(ct.ip.str(), {"true"}).ok());
    // The same host end name again: it is the record's.
    CHECK(fleet::load_network_record(e.state, ct.name)->links.at(0).host == left->links.at(0).host);
    REQUIRE(e.run({"stop"}).exit_code == 0);
    check_nothing_left(e);

    // A namespace of that name that no record of this fleet names: refused, left alone.
    sys::run_checked({"ip", "netns", "add", "aplspawn-aplspawn10"});
    auto refused = e.run({"spawn"});
    CHECK(refused.exit_code == 1);
    CHECK_THAT(refused.err, Catch::Contains("network namespace /run/netns/aplspawn-aplspawn10 exists and is "
                                            "not one this fleet made"));
    CHECK(sys::netns_exists("aplspawn-aplspawn10"));
    sys::run_checked({"ip", "netns", "delete", "aplspawn-aplspawn10"});
    REQUIRE(e.run({"stop"}).exit_code == 0);
    check_nothing_left(e);
}

TEST_CASE("a container that never becomes ready fails alone, with the tail of its log",
          "[fleet][spawn][debian]") {
    TempDir starter;
    fs::copy(fs::path(APLSPAWN_SOURCE_DIR) / "starter", starter.path(), fs::copy_options::recursive);
    write_file(starter / "broken.sh", R"(#!/bin/sh
case "$cName" in
aplspawn11) echo "broken on purpose: no sshd"; trap 'exit 0' TERM; while :; do sleep 1; done ;;
aplspawn12) echo "exiting on purpose"; exit 3 ;;
esac
exec /root/starter/startup.sh
)");
    fs::permissions(starter / "broken.sh", fs::perms::owner_all | fs::perms::group_read |
                                                fs::perms::group_exec | fs::perms::others_read |
                                                fs::perms::others_exec);
    Env e(3, fmt::format("  bindHost: {}\n  bindContainer: /root/starter\n"
                         "  startupScript: /root/starter/broken.sh\n",
                         starter.path().string()));
    auto t0 = std::chrono::steady_clock::now();
    auto r = e.run({"spawn", "--timeout", "20"});
    CHECK(std::chrono::steady_clock::now() - t0 < 60s);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::Contains("Checking ssh connection to 10.77.0.10"));
    CHECK_THAT(r.err, Catch::Contains("[ FAIL ] Checking ssh connection to 10.77.0.11: no SSH answer"));
    CHECK_THAT(r.err, Catch::Contains("broken on purpose: no sshd"));
    CHECK_THAT(r.err, Catch::Contains("exiting on purpose"));
    CHECK_THAT(r.err, Catch::Contains("2 of 3 containers did not come up: aplspawn11, aplspawn12"));
    CHECK(e.ssh("10.77.0.10", {"true"}).ok());
    // The host stays consistent: stop takes everything down.
    REQUIRE(e.run({"stop"}).exit_code == 0);
    check_nothing_left(e);
}

TEST_CASE("an image whose /root/.ssh, /home, /etc/hostname are symlinks to host paths writes nothing "
          "on the host",
          "[fleet][spawn]") {
    TempDir t;
    for (auto p : {"/tmp/HOSTPWN_ssh", "/tmp/HOSTPWN_home", "/tmp/HOSTPWN_hostname",
                   "/tmp/HOSTPWN_sudoers", "/tmp/HOSTPWN_etcssh"})
        REQUIRE_FALSE(fs::exists(fs::symlink_status(p)));
    auto img = make_test_image(t / "evil.img", "gpt-root", "squashfs", true);
    Env e(1, "  startupScript: /sbin/test-init\n", img);
    auto r = e.run({"spawn", "--timeout", "5"});
    CHECK(r.exit_code == 1);  // busybox has no sshd: it never answers SSH
    for (auto p : {"/tmp/HOSTPWN_ssh", "/tmp/HOSTPWN_home", "/tmp/HOSTPWN_hostname",
                   "/tmp/HOSTPWN_sudoers", "/tmp/HOSTPWN_etcssh"})
        CHECK_FALSE(fs::exists(fs::symlink_status(p)));
    CHECK(e.run({"stop"}).exit_code == 0);
    check_nothing_left(e);
}
