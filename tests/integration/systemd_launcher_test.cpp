// The systemd launcher on a real systemd: each outer test case boots a simulated systemd host
// (tests/support/systemd-host) and runs a hidden test case of this binary inside it, where
// systemd is PID 1 and machined, journald and the system bus answer. The container is made the
// way spawn makes it (lower layer on a loop device, overlay, launch_spec); then it is checked
// from systemd's side (unit, slice, MainPID, journal), machined's (machinectl list/status/show,
// leader) and stopped (unit and machine gone; stop twice).
#include "aplspawn/fleet/container_spec.hpp"
#include "aplspawn/fleet/launch.hpp"
#include "aplspawn/fleet/lower.hpp"
#include "aplspawn/fleet/network.hpp"
#include "aplspawn/fleet/overlay.hpp"
#include "aplspawn/fleet/systemd.hpp"
#include "aplspawn/net/container_network.hpp"
#include "aplspawn/sys/netns.hpp"
#include "integration/fleet_support.hpp"
#include "support/systemd_host.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <map>
#include <set>

using namespace aplspawn;
using namespace aplspawn::testing;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// `systemctl show -p PROPERTY --value UNIT`
std::string unit_property(const std::string& unit, const std::string& property) {
    return trimmed(sys::run({"systemctl", "show", "-p", property, "--value", unit}).out);
}

std::string machines() {
    return sys::run({"machinectl", "list", "--no-legend", "--no-pager"}).out;
}

// A fleet of one in the simulated host: bridge, image on a loop device, overlay, launch spec.
struct OneContainer {
    TempDir t;
    config::Config c;
    fleet::StateDir state;
    const config::Container& ct;
    fleet::LaunchSpec spec;
    OneContainer(const fs::path& image, std::string_view extra)
        : c(write_config(t, 1, extra)), state(c), ct(c.fleet.at(0)) {
        make_bridge();
        install_image(c, image);
        fleet::check_upper_filesystem(c, true);
        auto lower = fleet::ensure_lower(c, image_of(c), state, false).mount_point;
        auto dirs = fleet::container_dirs(c, *c.find(ct.name));
        fleet::ensure_overlay(lower, dirs);
        fleet::create_network(c, ct, state);  // as spawn does, before the launch
        spec = fleet::launch_spec(ct, dirs, state);
    }
};

void require_systemd_host() {
    REQUIRE(fs::is_directory("/run/systemd/system"));  // only inside tests/support/systemd-host
}

// Runs the hidden cases `filter` inside a fresh simulated systemd host.
void run_inside(const std::string& filter, std::vector<std::string> extra = {}) {
    SystemdHost host(std::move(extra));
    auto r = host.run_tests_inside(filter);
    INFO(host.start_report());
    INFO("inside the simulated systemd host:\n" << r.out << r.err);
    CHECK(r.ok());
    CHECK_THAT(r.out, Contains("All tests passed"));
    CHECK(host.stop().ok());
}

}  // namespace

// ---- inside the simulated systemd host (hidden: only run_inside runs them) ----

TEST_CASE("inside a systemd host: a script-mode container as unit aplspawn-NAME.service",
          "[.systemd-inside][script]") {
    require_systemd_host();
    auto launcher = fleet::make_systemd_launcher();
    REQUIRE(launcher);
    CHECK(launcher->kind() == "systemd");
    CHECK(fleet::make_launcher()->kind() == "systemd");

    OneContainer f(make_test_image("/tmp/busybox.img"), "  startupScript: /sbin/test-init\n");
    const std::string& name = f.ct.name;
    const std::string unit = "aplspawn-" + name + ".service";

    auto rec = launcher->start(f.spec);
    CHECK(rec.launcher == "systemd");
    CHECK(rec.unit == unit);
    CHECK(rec.mode == "script");
    CHECK(rec.name == name);
    CHECK(fleet::is_running(rec));

    // systemd's side: the unit and how it runs nspawn.
    CHECK(unit_property(unit, "ActiveState") == "active");
    CHECK(unit_property(unit, "MainPID") == std::to_string(rec.nspawn_pid));
    CHECK(unit_property(unit, "Slice") == "machine.slice");
    CHECK(unit_property(unit, "Type") == "notify");
    CHECK(unit_property(unit, "KillMode") == "mixed");
    CHECK(unit_property(unit, "Delegate") == "yes");
    auto exec = unit_property(unit, "ExecStart");
    CHECK_THAT(exec, Contains("--keep-unit"));
    CHECK_THAT(exec, Contains("--register=yes"));
    CHECK_THAT(exec, !Contains("--register=no"));
    CHECK_THAT(exec, Contains("--machine=" + name));

    // machined's side.
    CHECK_THAT(machines(), Contains(name));
    auto status = sys::run({"machinectl", "status", name, "--no-pager"});
    CHECK(status.ok());
    CHECK_THAT(status.out, Contains("Unit: " + unit));
    auto leader = launcher->leader(rec);
    REQUIRE(leader);
    CHECK(std::to_string(*leader) ==
          trimmed(sys::run({"machinectl", "show", name, "-p", "Leader", "--value"}).out));
    CHECK(*leader != rec.nspawn_pid);
    CHECK(rec.leader_pid == *leader);  // known at start already: nspawn registers before READY
    // PID 1 inside is the startup script: it wrote its marker into the container's /run.
    CHECK(eventually([&] {
        return fs::exists(fmt::format("/proc/{}/root/run/test-init.started", *leader));
    }));

    // Its output is in the unit's journal; the state directory's log file says so.
    CHECK(eventually([&] {
        return sys::run({"journalctl", "--no-pager", "-o", "cat", "-u", unit}).out.find(
                   "aplspawn-test-init pid=1") != std::string::npos;
    }));
    CHECK_THAT(sys::read_file(f.spec.log_file), Contains("journalctl -u " + unit));

    // Resource limits work on the unit (cgroup v2 hosts; hybrid ones accept them too).
    CHECK(sys::run({"systemctl", "set-property", "--runtime", unit, "MemoryMax=256M"}).ok());
    CHECK(unit_property(unit, "MemoryMax") == std::to_string(256ull << 20));

    // A second start of a running container is refused, and harms nothing.
    CHECK_THROWS_WITH(launcher->start(f.spec), Contains("already active"));
    CHECK(fleet::is_running(rec));

    // Stop: test-init's sleep ignores SIGTERM as PID 1, so the grace time passes, then the kill.
    auto t0 = std::chrono::steady_clock::now();
    CHECK(launcher->stop(rec, 1s) == Change::changed);
    auto took = std::chrono::steady_clock::now() - t0;
    CHECK(took >= 1s);
    CHECK(took < 8s);
    CHECK_FALSE(fleet::is_running(rec));
    CHECK_THAT(machines(), !Contains(name));
    CHECK(unit_property(unit, "LoadState") == "not-found");  // unloaded, not left failed
    CHECK_FALSE(launcher->leader(rec).has_value());
    CHECK(launcher->stop(rec, 1s) == Change::unchanged);

    // It starts again as the same unit (nothing left over blocks it), and stops again. A drop-in
    // for the unit's name is how limits outlive one run (docs/systemd-host.md).
    write_file(fs::path("/etc/systemd/system") / (unit + ".d") / "50-limits.conf",
               "[Service]\nMemoryMax=128M\nCPUQuota=50%\n");
    REQUIRE(sys::run({"systemctl", "daemon-reload"}).ok());
    auto again = launcher->start(f.spec);
    CHECK(again.unit == unit);
    CHECK(unit_property(unit, "MemoryMax") == std::to_string(128ull << 20));
    CHECK(unit_property(unit, "CPUQuotaPerSecUSec") == "500ms");
    CHECK(again.nspawn_pid != rec.nspawn_pid);
    CHECK_THAT(machines(), Contains(name));
    CHECK(launcher->stop(again, 1s) == Change::changed);
    CHECK(unit_property(unit, "LoadState") == "not-found");
}

TEST_CASE("inside a systemd host: a failed start names the unit and leaves no failed unit",
          "[.systemd-inside][failure]") {
    require_systemd_host();
    auto launcher = fleet::make_systemd_launcher();
    REQUIRE(launcher);
    TempDir t;
    fleet::LaunchSpec spec;
    spec.name = "broken1";
    spec.root = t / "no-such-root";  // nspawn refuses it before the container runs
    spec.network_namespace = sys::netns_path("aplspawn-broken1");
    spec.mode = config::StartMode::script;
    spec.command = {"/sbin/test-init"};

    // Its namespace is missing (stop, or an interrupted run, took it down): refused before any
    // unit is made, naming the path, as the detached launcher does. Left to systemd, it was a
    // unit that failed at step NETWORK with nspawn never run.
    CHECK_THROWS_WITH(launcher->start(spec),
                      Contains("start container broken1") &&
                          Contains("open network namespace /run/netns/aplspawn-broken1") &&
                          Contains("No such file or directory"));
    CHECK(unit_property("aplspawn-broken1.service", "LoadState") == "not-found");
    // A file of that name that is no namespace (a name whose making was interrupted).
    write_file(spec.network_namespace, "");
    CHECK_THROWS_WITH(launcher->start(spec), Contains("not a network namespace"));
    CHECK(unit_property("aplspawn-broken1.service", "LoadState") == "not-found");
    REQUIRE(sys::remove_netns("aplspawn-broken1") == Change::changed);

    // With its namespace in place (as spawn makes it), the start reaches nspawn, which fails.
    sys::create_netns("aplspawn-broken1");
    try {
        launcher->start(spec);
        FAIL("start of a container without a root directory succeeded");
    } catch (const Error& e) {
        CHECK_THAT(e.message(), Contains("start container broken1"));
        CHECK_THAT(e.message(), Contains("aplspawn-broken1.service"));
        CHECK_THAT(e.message(), Contains("journalctl -u aplspawn-broken1.service"));
        // The unit's journal, read through sd-journal: nspawn named the missing directory.
        CHECK_THAT(e.message(), Contains("no-such-root"));
    }
    CHECK(unit_property("aplspawn-broken1.service", "LoadState") == "not-found");
    CHECK_THAT(machines(), !Contains("broken1"));
    CHECK(sys::remove_netns("aplspawn-broken1") == Change::changed);
}

TEST_CASE("inside a systemd host: a booted Debian container, poweroff through machined",
          "[.systemd-inside][boot]") {
    require_systemd_host();
    const char* image = std::getenv("APLSPAWN_TEST_DEBIAN_IMAGE");
    REQUIRE(image);
    auto launcher = fleet::make_systemd_launcher();
    REQUIRE(launcher);
    OneContainer f(image, "");
    const std::string& name = f.ct.name;
    const std::string unit = "aplspawn-" + name + ".service";

    auto rec = launcher->start(f.spec);
    CHECK(rec.mode == "boot");
    auto leader = launcher->leader(rec);
    REQUIRE(leader);
    CHECK(rec.leader_pid == *leader);
    // machined names the leader as soon as nspawn registers: the pid is right at once, though it
    // may still be nspawn's child, a moment before it execs the guest's systemd.
    CHECK(eventually([&] {
        return trimmed(sys::read_file(fmt::format("/proc/{}/comm", *leader))) == "systemd";
    }));

    // The guest boots; systemctl -M and journalctl -M reach into it through machined.
    std::string state;
    CHECK(eventually(
        [&] {
            state = trimmed(sys::run({"systemctl", "-M", name, "is-system-running"}).out);
            return state == "running" || state == "degraded";
        },
        60s));
    INFO("guest state: " << state);
    auto status = sys::run({"machinectl", "status", name, "--no-pager"});
    CHECK(status.ok());
    CHECK_THAT(status.out, Contains("Debian GNU/Linux 12"));
    CHECK_THAT(status.out, Contains("Unit: " + unit));
    auto guest_log = sys::run({"journalctl", "-M", name, "--no-pager", "-o", "cat", "-n", "200"});
    CHECK_THAT(guest_log.out, Contains("Startup finished"));

    // Poweroff through machined (SIGRTMIN+4): clean, well within the grace time.
    auto t0 = std::chrono::steady_clock::now();
    CHECK(launcher->stop(rec, 30s) == Change::changed);
    CHECK(std::chrono::steady_clock::now() - t0 < 20s);
    CHECK_THAT(sys::run({"journalctl", "--no-pager", "-o", "cat", "-u", unit}).out,
               Contains("Powering off"));
    CHECK_THAT(machines(), !Contains(name));
    CHECK(unit_property(unit, "LoadState") == "not-found");
    CHECK(launcher->stop(rec, 30s) == Change::unchanged);
}

TEST_CASE("inside a systemd host: three interfaces on three bridges, in the namespace aplspawn made",
          "[.systemd-inside][networks]") {
    require_systemd_host();
    auto launcher = fleet::make_systemd_launcher();
    REQUIRE(launcher);
    make_bridge("aplback0", "10.78.1.1/24");
    make_bridge("aplstor0", "10.78.2.1/24");
    OneContainer f(make_test_image("/tmp/busybox.img"), R"(  startupScript: /sbin/test-init
  networks:
    backend: [10.78.1.10, 10.78.1.100]
    storage: [10.78.2.10, 10.78.2.100]
networks:
  backend: {bridge: aplback0, address: 10.78.1.1, netPrefix: 24}
  storage: {bridge: aplstor0, address: 10.78.2.1, netPrefix: 24, nat: true}
)");
    const std::string& name = f.ct.name;
    auto rec = launcher->start(f.spec);
    CHECK(rec.netns == "/run/netns/aplspawn-" + name);
    // systemd starts nspawn in the namespace (no network option of nspawn's).
    CHECK(unit_property("aplspawn-" + name + ".service", "NetworkNamespacePath") == "/run/netns/aplspawn-" + name);
    CHECK_THAT(unit_property("aplspawn-" + name + ".service", "ExecStart"),
               Contains("--capability=CAP_NET_ADMIN") && !Contains("--network"));
    CHECK_THAT(unit_property("aplspawn-" + name + ".service", "Environment"),
               Contains("SYSTEMD_NSPAWN_API_VFS_WRITABLE=network"));
    auto leader = launcher->leader(rec);
    REQUIRE(leader);
    // The container runs in that namespace, with every interface and address in it.
    struct stat in_ns, named;
    REQUIRE(::stat(fmt::format("/proc/{}/ns/net", *leader).c_str(), &in_ns) == 0);
    REQUIRE(::stat(rec.netns.c_str(), &named) == 0);
    CHECK(in_ns.st_ino == named.st_ino);
    auto nl = net::Netlink::open_in_netns_of(*leader);
    std::map<std::string, std::string> have;
    for (const auto& i : net::interface_states(nl))
        for (const auto& a : i.addresses) have[i.name] = a.str();
    CHECK(have == std::map<std::string, std::string>{{"lo", "127.0.0.1/8"},
                                                     {"host0", "10.77.0.10/24"},
                                                     {"backend", "10.78.1.10/24"},
                                                     {"storage", "10.78.2.10/24"}});
    // The container's /sys shows its own interfaces, not the host's.
    std::set<std::string> in_sys;
    for (const auto& e : fs::directory_iterator(fmt::format("/proc/{}/root/sys/class/net", *leader)))
        in_sys.insert(e.path().filename().string());
    CHECK(in_sys == std::set<std::string>{"backend", "host0", "lo", "storage"});
    for (const char* ip : {"10.77.0.10", "10.78.1.10", "10.78.2.10"}) CHECK(eventually([&] { return pings(ip); }));
    CHECK_THAT(machines(), Contains(name));

    CHECK(launcher->stop(rec, 1s) == Change::changed);
    CHECK(fleet::remove_network(f.state, name).change == Change::changed);
    CHECK(sys::run_checked({"ip", "-o", "link", "show", "type", "veth"}).out.empty());
    CHECK(sys::run_checked({"bridge", "link", "show"}).out.empty());
    CHECK(sys::run_checked({"ip", "netns", "list"}).out.empty());
}

// ---- outer: boot a simulated systemd host, run the cases above inside ----

TEST_CASE("systemd launcher in a systemd host: script mode, machinectl, journal, stop",
          "[systemd][systemd-launcher]") {
    run_inside("[.systemd-inside][script]");
}

TEST_CASE("systemd launcher in a systemd host: three interfaces on three bridges",
          "[systemd][systemd-launcher][networks]") {
    run_inside("[.systemd-inside][networks]");
}

TEST_CASE("systemd launcher in a systemd host: a failed start", "[systemd][systemd-launcher]") {
    run_inside("[.systemd-inside][failure]");
}

TEST_CASE("systemd launcher in a systemd host: boot mode with the default Debian image",
          "[systemd][systemd-launcher]") {
    auto image = default_image();
    ::setenv("APLSPAWN_TEST_DEBIAN_IMAGE", image.c_str(), 1);  // inherited by the inner run
    // Its repository, wherever APLSPAWN_IMAGE_REPO put it, read-only at the same path inside.
    run_inside("[.systemd-inside][boot]", {"--bind-ro", image.parent_path().string()});
}
