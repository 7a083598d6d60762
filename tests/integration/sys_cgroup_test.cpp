// Cgroups of our own in the systemd hierarchies (sys/cgroup.hpp): made, a process moved in by
// sys::spawn, removed; and the collection of trees containers left when they died without a stop,
// which must never touch a tree that still holds a process, nor one just made.
#include "aplspawn/sys/cgroup.hpp"
#include "aplspawn/sys/process.hpp"
#include "support/testing.hpp"

#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <thread>

using namespace aplspawn;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// A parent of this test's own, so that nothing else's cgroups are in reach.
std::string test_parent() { return fmt::format("aplspawn-test-{}", ::getpid()); }

bool exists_in_all(const std::string& rel) {
    auto roots = sys::systemd_cgroup_mounts();
    for (const auto& r : roots)
        if (!fs::is_directory(r / rel)) return false;
    return !roots.empty();
}
bool gone_from_all(const std::string& rel) {
    for (const auto& r : sys::systemd_cgroup_mounts())
        if (fs::exists(r / rel)) return false;
    return true;
}

}  // namespace

TEST_CASE("unused cgroups are collected: empty old trees go, busy or young ones stay", "[cgroup]") {
    REQUIRE_FALSE(sys::systemd_cgroup_mounts().empty());
    const std::string parent = test_parent();
    const std::string empty = parent + "/dead.1", busy = parent + "/alive.1";

    // A dead container's tree: its own cgroup and what its systemd made below it.
    sys::create_cgroups(empty + "/init.scope");
    sys::create_cgroups(empty + "/system.slice/ssh.service");
    // A live one: a process in a leaf cgroup, empty siblings around it.
    auto fds = sys::create_cgroups(busy + "/init.scope");
    sys::create_cgroups(busy + "/system.slice/cron.service");
    sys::SpawnOptions o;
    for (const auto& fd : fds) o.cgroup_procs.push_back(fd.get());
    sys::Child sleeper = sys::spawn({"/bin/sleep", "60"}, o);
    REQUIRE(exists_in_all(empty));
    REQUIRE(exists_in_all(busy));

    // Young: nothing is collected yet, however empty.
    CHECK(sys::remove_unused_cgroups(parent, 3600s) == 0);
    CHECK(exists_in_all(empty + "/system.slice/ssh.service"));

    // Old enough: the empty tree goes whole; the busy one keeps even its empty cgroups.
    CHECK(sys::remove_unused_cgroups(parent, 0s) == 1);
    CHECK(gone_from_all(empty));
    CHECK(exists_in_all(busy + "/system.slice/cron.service"));
    CHECK(exists_in_all(busy + "/init.scope"));

    // Once its process is gone it goes too, and the parent with it.
    ::kill(sleeper.pid(), SIGKILL);
    sleeper.wait_for(5s);
    CHECK(sys::remove_unused_cgroups(parent, 0s) == 1);
    CHECK(gone_from_all(busy));
    CHECK(gone_from_all(parent));
    CHECK(sys::remove_unused_cgroups(parent, 0s) == 0);  // twice: nothing left, no error
}

TEST_CASE("remove_unused_cgroups refuses a parent outside its own names", "[cgroup]") {
    CHECK(sys::remove_unused_cgroups("", 0s) == 0);
    CHECK(sys::remove_unused_cgroups("/", 0s) == 0);
    CHECK(sys::remove_unused_cgroups("../x", 0s) == 0);
}
