// The detached launcher on a busybox image in script mode: nspawn in the network namespace
// aplspawn made (its interface and address there before the container starts; ping answers), its
// leader, a graceful stop that falls back to a kill, stop twice; and a container an interrupted
// run left unrecorded is found and stopped, its network taken down.
#include "aplspawn/fleet/container_spec.hpp"
#include "aplspawn/fleet/launch.hpp"
#include "aplspawn/fleet/lower.hpp"
#include "aplspawn/fleet/observe.hpp"
#include "aplspawn/fleet/overlay.hpp"
#include "aplspawn/fleet/processes.hpp"
#include "aplspawn/fleet/settle.hpp"
#include "aplspawn/fleet/stop.hpp"
#include "aplspawn/fleet/network.hpp"
#include "aplspawn/net/link.hpp"
#include "aplspawn/sys/netns.hpp"
#include "integration/fleet_support.hpp"

#include <net/if.h>
#include <sys/stat.h>

#include <set>
#include <thread>

using namespace aplspawn;
using namespace aplspawn::testing;
using namespace std::chrono_literals;

namespace {

struct Fleet {
    TempDir t;
    config::Config c;
    fleet::StateDir state;
    fs::path lower;
    Fleet()
        : c(write_config(t, 2, "  startupScript: /sbin/test-init\n")), state(c) {
        make_bridge();
        install_image(c, make_test_image(t / "img"));
        fleet::check_upper_filesystem(c, true);
        lower = fleet::ensure_lower(c, image_of(c), state, false).mount_point;
    }
    // As spawn does it: the overlay, the network, then the launch spec.
    fleet::LaunchSpec spec(std::size_t i) {
        auto d = fleet::container_dirs(c, c.fleet.at(i));
        fleet::ensure_overlay(lower, d);
        fleet::create_network(c, c.fleet.at(i), state);
        return fleet::launch_spec(c.fleet.at(i), d, state);
    }
};

// The links of this namespace whose names aplspawn gives host ends ("ap" + 8 hex + n).
std::vector<std::string> host_ends() {
    auto nl = net::Netlink::open();
    std::vector<std::string> out;
    for (const auto& l : net::list_links(nl))
        if (l.name.size() >= 11 && l.name.starts_with("ap") && l.kind == "veth") out.push_back(l.name);
    return out;
}

}  // namespace

TEST_CASE("detached launcher: start, leader, static IP, stop (graceful, then kill), stop twice",
          "[fleet][launch]") {
    Fleet f;
    auto launcher = fleet::make_detached_launcher();
    CHECK(launcher->kind() == "detached");
    const auto& ct = f.c.fleet.at(0);
    auto rec = launcher->start(f.spec(0));
    CHECK(rec.launcher == "detached");
    CHECK(rec.mode == "script");
    CHECK(fleet::is_running(rec));

    std::optional<pid_t> leader;
    REQUIRE(eventually([&] { return (leader = launcher->leader(rec)).has_value(); }));
    CHECK(*leader != rec.nspawn_pid);
    // PID 1 inside is the startup script (it wrote its marker into the container's /run).
    CHECK(eventually([&] {
        return fs::exists(fmt::format("/proc/{}/root/run/test-init.started", *leader));
    }));
    // It runs in the namespace aplspawn made, whose host end is a port of the bridge.
    struct stat in_ns, named;
    REQUIRE(::stat(fmt::format("/proc/{}/ns/net", *leader).c_str(), &in_ns) == 0);
    REQUIRE(::stat(sys::netns_path("aplspawn-" + ct.name).c_str(), &named) == 0);
    CHECK(in_ns.st_ino == named.st_ino);
    auto record = fleet::load_network_record(f.state, ct.name);
    REQUIRE(record);
    REQUIRE(record->links.size() == 1);
    CHECK(record->links[0].interface == "host0");
    auto nl = net::Netlink::open();
    auto end = net::find_link(nl, record->links[0].host);
    REQUIRE(end);
    CHECK(end->master == net::find_link(nl, "apltest0")->index);
    CHECK(end->alias == record->links[0].alias);
    CHECK(sys::run_checked({"ip", "netns", "exec", "aplspawn-" + ct.name, "ip", "-4", "-o", "addr", "show", "host0"})
              .out.find("inet " + ct.ip.str() + "/24") != std::string::npos);
    // nspawn itself runs in it (no network option of its own), and so the container's /sys is
    // that namespace's: it lists the container's interfaces, not the host's.
    struct stat nspawn_ns;
    REQUIRE(::stat(fmt::format("/proc/{}/ns/net", rec.nspawn_pid).c_str(), &nspawn_ns) == 0);
    CHECK(nspawn_ns.st_ino == named.st_ino);
    CHECK_THAT(sys::read_file(f.state.log_path(ct.name)), !Catch::Contains("--network"));
    std::set<std::string> in_sys;
    for (const auto& e : fs::directory_iterator(fmt::format("/proc/{}/root/sys/class/net", *leader)))
        in_sys.insert(e.path().filename().string());
    CHECK(in_sys == std::set<std::string>{"host0", "lo"});
    // The processes list finds it by machine and directory.
    auto all = fleet::list_nspawn_processes();
    REQUIRE(all.size() == 1);
    CHECK(all[0].machine == ct.name);
    CHECK(all[0].process.pid == rec.nspawn_pid);

    // The address was there before the container started: it answers at once.
    CHECK(eventually([&] { return pings(ct.ip.str()); }));

    // test-init's sleep ignores SIGTERM as PID 1: the grace time passes, then the kill.
    auto lead = fleet::process_ref(*leader);
    REQUIRE(lead);
    rec.leader_pid = lead->pid;
    rec.leader_start_time = lead->start_time;
    auto t0 = std::chrono::steady_clock::now();
    CHECK(launcher->stop(rec, 1s) == Change::changed);
    auto took = std::chrono::steady_clock::now() - t0;
    CHECK(took >= 900ms);
    CHECK(took < 8s);
    CHECK_FALSE(fleet::is_running(rec));
    CHECK_FALSE(fleet::alive(*lead));
    CHECK(launcher->stop(rec, 1s) == Change::unchanged);
    // The network is aplspawn's: it stays until aplspawn removes it, then nothing is left.
    CHECK(sys::netns_exists("aplspawn-" + ct.name));
    CHECK(fleet::remove_network(f.state, ct.name).change == Change::changed);
    CHECK(host_ends().empty());
    CHECK_FALSE(sys::netns_exists("aplspawn-" + ct.name));
    CHECK_FALSE(fleet::load_network_record(f.state, ct.name));
    CHECK(fleet::remove_network(f.state, ct.name).change == Change::unchanged);
    // The log holds the command line and the console output.
    CHECK_THAT(sys::read_file(f.state.log_path(ct.name)),
               Catch::Contains("--machine=aplspawn10") && Catch::Contains("aplspawn-test-init"));
}

TEST_CASE("a container an interrupted run started but never recorded is found and stopped",
          "[fleet][launch]") {
    Fleet f;
    auto launcher = fleet::make_detached_launcher();
    auto rec = launcher->start(f.spec(1));  // as if aplspawn died before saving the record
    REQUIRE(eventually([&] { return launcher->leader(rec).has_value(); }));

    auto view = fleet::observe(f.c, f.state);
    REQUIRE(view.containers.size() == 2);
    const auto& v = view.containers[1];
    CHECK_FALSE(v.record);
    CHECK_FALSE(v.running);
    REQUIRE(v.strays.size() == 1);
    CHECK(v.strays[0].process.pid == rec.nspawn_pid);
    CHECK(v.merged_mounted);
    CHECK(v.network_recorded);
    CHECK(v.busy());
    CHECK(view.busy_names() == std::vector<std::string>{"aplspawn11"});

    auto plan = fleet::settle(f.state, v, true);
    CHECK(fleet::is_running(rec));  // dry run: nothing done
    CHECK_FALSE(plan.lines.empty());

    auto o = fleet::settle(f.state, v, false);
    CHECK(o.ok);
    CHECK_FALSE(fleet::is_running(rec));
    CHECK(host_ends().empty());
    CHECK_FALSE(sys::netns_exists("aplspawn-aplspawn11"));
    auto after = fleet::observe(f.c, f.state);
    CHECK_FALSE(after.any_busy());
    CHECK(fs::exists(after.containers[1].dirs.upper));  // data kept
}

TEST_CASE("stop_container: stops, unmounts, drops the record, twice is already so", "[fleet][launch]") {
    Fleet f;
    auto launcher = fleet::make_detached_launcher();
    auto rec = launcher->start(f.spec(0));
    f.state.save(rec);
    REQUIRE(eventually([&] { return launcher->leader(rec).has_value(); }));

    auto view = fleet::observe(f.c, f.state);
    auto o = fleet::stop_container(f.state, view.containers[0], 1s);
    CHECK(o.ok);
    REQUIRE(o.lines.size() == 3);
    CHECK_THAT(o.lines[0].text, Catch::Contains("Stopping container aplspawn10"));
    CHECK_THAT(o.lines[1].text, Catch::Contains("Removing the network of aplspawn10 (namespace aplspawn-aplspawn10)"));
    CHECK_THAT(o.lines[2].text, Catch::Contains("Umount overlayFS"));
    CHECK(host_ends().empty());
    CHECK_FALSE(f.state.load("aplspawn10"));
    CHECK(fs::exists(f.state.log_path("aplspawn10")));

    auto again = fleet::stop_container(f.state, fleet::observe(f.c, f.state).containers[0], 1s);
    REQUIRE(again.lines.size() == 1);
    CHECK_THAT(again.lines[0].text, Catch::EndsWith("(already so)"));
}

TEST_CASE("stop right after start, before the container's PID 1 is known, leaves nothing running",
          "[fleet][launch]") {
    // What settle does with an interrupted spawn's container: its record (if any) has no leader
    // yet. The PID 1 that nspawn makes meanwhile must go too: killing nspawn alone left it
    // running, with its namespaces (the next spawn of NAME then failed with "File exists"). The window is some milliseconds wide, a few ms after nspawn starts: stop
    // at several delays into it.
    Fleet f;
    auto launcher = fleet::make_detached_launcher();
    const auto& ct = f.c.fleet.at(0);
    auto inits = [&] {  // test-init, before and after it execs `sleep 2147483647`
        int n = 0;
        for (auto& e : fs::directory_iterator("/proc")) try {
                auto cmd = sys::read_file_if_exists(e.path() / "cmdline").value_or("");
                if (cmd.find("/sbin/test-init") != std::string::npos ||
                    cmd.find(std::string("sleep\0" "2147483647", 16)) != std::string::npos)
                    ++n;
            } catch (const Error&) {
            }
        return n;
    };
    for (int delay_ms = 0; delay_ms <= 40; delay_ms += 5) {
        INFO("stop " << delay_ms << " ms after start");
        auto rec = launcher->start(f.spec(0));
        REQUIRE(rec.leader_pid == 0);
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
        // test-init ignores SIGTERM: the graceful stop fails and the kill has to find PID 1.
        CHECK(launcher->stop(rec, 1s) == Change::changed);
        CHECK_FALSE(fleet::is_running(rec));
        CHECK(eventually([&] { return inits() == 0; }));
        CHECK(fleet::remove_network(f.state, ct.name).change == Change::changed);
        CHECK(host_ends().empty());
        CHECK_FALSE(sys::netns_exists("aplspawn-" + ct.name));
        if (inits() != 0) break;  // one such leftover is enough to say so
    }
}

TEST_CASE("detached launcher: a missing namespace, or a file that is none, is refused before nspawn runs",
          "[fleet][launch]") {
    Fleet f;
    auto launcher = fleet::make_detached_launcher();
    const auto& ct = f.c.fleet.at(0);
    auto spec = f.spec(0);
    REQUIRE(fleet::remove_network(f.state, ct.name).change == Change::changed);
    CHECK_THROWS_WITH(launcher->start(spec),
                      Catch::Contains("start " + ct.name) &&
                          Catch::Contains("open network namespace /run/netns/aplspawn-" + ct.name) &&
                          Catch::Contains("No such file or directory"));
    write_file(spec.network_namespace, "");  // a name whose making was interrupted
    CHECK_THROWS_WITH(launcher->start(spec), Catch::Contains("not a network namespace"));
    CHECK(fleet::list_nspawn_processes().empty());
    CHECK(sys::remove_netns("aplspawn-" + ct.name) == Change::changed);
}
