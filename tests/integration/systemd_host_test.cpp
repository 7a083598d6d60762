// The simulated systemd host (tests/support/systemd-host) itself, and the choice of launcher on a
// host without systemd as PID 1.
#include "aplspawn/fleet/launch.hpp"
#include "support/systemd_host.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <fstream>

using namespace aplspawn;
using namespace aplspawn::testing;
using Catch::Matchers::Contains;

namespace {

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

bool mounted_overlay() {
    std::ifstream in("/proc/self/mounts");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("overlay ", 0) == 0) return true;
    return false;
}

}  // namespace

TEST_CASE("without systemd as PID 1 there is no systemd launcher: containers start detached",
          "[systemd]") {
    // run-in-ns gives every test a fresh /run: no /run/systemd/system, whatever the machine.
    REQUIRE_FALSE(fs::exists("/run/systemd/system"));
    CHECK(fleet::make_systemd_launcher() == nullptr);
    CHECK(fleet::make_launcher()->kind() == "detached");
}

TEST_CASE("simulated systemd host: systemd is PID 1, systemd-run and machinectl work, nothing stays",
          "[systemd][systemd-host]") {
    std::string dir = "/run/aplspawn-test/systemd-host";
    pid_t nspawn = 0;
    {
        SystemdHost host;
        CHECK_THAT(host.start_report(), Contains("Simulated systemd host ready in"));
        nspawn = std::stoi(sys::read_file(dir + "/nspawn.pid"));
        CHECK(::kill(nspawn, 0) == 0);
        CHECK(host.leader() != nspawn);

        // systemd is PID 1 inside, the boot finished, and it is another machine.
        CHECK(trimmed(host.exec({"cat", "/proc/1/comm"}).out) == "systemd");
        auto state = trimmed(host.exec({"systemctl", "is-system-running"}).out);
        CHECK((state == "running" || state == "degraded"));
        CHECK(fs::exists("/proc/" + std::to_string(host.leader()) + "/root/run/systemd/system"));
        CHECK(trimmed(host.exec({"cat", "/etc/machine-id"}).out) !=
              trimmed(sys::read_file("/etc/machine-id")));

        // A transient unit runs and its output lands in the journal.
        auto run = host.exec({"systemd-run", "--wait", "--quiet", "--unit=harness-probe",
                              "/bin/sh", "-c", "echo probe-$((6 * 7))"});
        CHECK(run.ok());
        INFO(run.err);
        auto log = host.exec({"journalctl", "--no-pager", "-o", "cat", "-u", "harness-probe"});
        CHECK_THAT(log.out, Contains("probe-42"));

        // machined answers (bus-activated) and knows no machine yet.
        auto list = host.exec({"machinectl", "list", "--no-legend", "--no-pager"});
        CHECK(list.ok());
        CHECK(trimmed(list.out).empty());

        // What aplspawn needs inside: loop devices, a writable sysctl tree of its own network,
        // the build read-only.
        CHECK(host.exec({"test", "-c", "/dev/loop-control"}).ok());
        CHECK(host.exec({"test", "-b", "/dev/loop0"}).ok());
        CHECK(host.exec({"sysctl", "-q", "-w", "net.ipv4.ip_forward=1"}).ok());
        CHECK(host.exec({"test", "-x", APLSPAWN_BINARY}).ok());
        CHECK_FALSE(host.exec({"touch", (build_dir() / ".written-from-inside").string()}).ok());
        CHECK(host.exec({"test", "-r", "/var/cache/aplspawn"}).ok() ==
              fs::exists("/var/cache/aplspawn"));

        auto stopped = host.stop();
        INFO(stopped.err);
        CHECK(stopped.ok());
    }
    // Gone: the nspawn process, its overlay, the tmpfs of the harness.
    CHECK((::kill(nspawn, 0) != 0 || sys::read_file(fmt::format("/proc/{}/stat", nspawn))
                                                 .find(") Z ") != std::string::npos));
    CHECK_FALSE(mounted_overlay());
    CHECK_FALSE(fs::exists(dir));
}

TEST_CASE("systemd-host refuses to run outside throwaway namespaces", "[systemd][systemd-host]") {
    sys::RunOptions o;
    o.env = {"APLSPAWN_IN_TEST_NS=0"};
    auto r = sys::run({systemd_host_script().string(), "start"}, o);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Contains("only inside throwaway namespaces"));
    CHECK_FALSE(mounted_overlay());
}
