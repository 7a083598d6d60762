// Resource limits in cgroups (sys/cgroup_limits.hpp) on this machine's real v1/hybrid layout: the
// memory, cpuset and pids files of a cgroup of our own get the values, a process moved in before
// exec is under them from its start (an allocation beyond the memory limit is OOM-killed there and
// counted), a value the kernel refuses names the file and the value, and remove_cgroup takes the
// cgroups down in every hierarchy. The v2 path is checked against a directory shaped like a cgroup2
// root: this host's controllers are all bound to v1 (its cgroup2 offers only hugetlb), so no real
// cgroup2 with memory, cpuset and pids can be had here.
#include "aplspawn/sys/cgroup.hpp"
#include "aplspawn/sys/cgroup_limits.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/process.hpp"
#include "support/testing.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <fstream>

using namespace aplspawn;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string test_parent() { return fmt::format("aplspawn-limits-test-{}", ::getpid()); }

std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::string s;
    std::getline(in, s);
    return s;
}

// Removes the test's cgroups whatever happens (children first).
struct CgroupsGone {
    std::string rel;
    ~CgroupsGone() {
        sys::remove_cgroup(rel);
        for (const auto& root : sys::limit_cgroup_mounts()) ::rmdir((root / fs::path(rel).parent_path()).c_str());
    }
};

}  // namespace

TEST_CASE("v1: limits land in the memory, cpuset and pids hierarchies and hold from exec",
          "[cgroup][resources]") {
    auto m = sys::controller_mounts();
    REQUIRE(m.layout == sys::CgroupLayout::legacy);  // this machine (GUIDE.md)
    REQUIRE(m.v1.contains("memory"));
    REQUIRE(m.v1.contains("cpuset"));
    REQUIRE(m.v1.contains("pids"));
    const std::string rel = test_parent() + "/c.1";
    CgroupsGone gone{rel};

    sys::CgroupLimits l;
    l.memory_bytes = 64ull << 20;
    l.cpus = "0";
    l.tasks = 64;
    auto fds = sys::create_limited_cgroups(m, rel, l);
    CHECK(fds.size() == 3);
    CHECK(read(m.v1["memory"] / rel / "memory.limit_in_bytes") == "67108864");
    CHECK(read(m.v1["cpuset"] / rel / "cpuset.cpus") == "0");
    CHECK_FALSE(read(m.v1["cpuset"] / rel / "cpuset.mems").empty());  // its parent's
    CHECK(read(m.v1["pids"] / rel / "pids.max") == "64");
    // The parent made on the way got its parent's CPUs and memory nodes (else nothing may join).
    CHECK(read(m.v1["cpuset"] / test_parent() / "cpuset.cpus") == read(m.v1["cpuset"] / "cpuset.cpus"));

    // Twice: the same values again, no error.
    CHECK(sys::create_limited_cgroups(m, rel, l).size() == 3);

    // A process moved in before exec: its affinity is the cpuset, and an allocation of 256 MiB
    // is killed by the OOM killer of this cgroup, which counts it.
    CHECK(sys::oom_kills(m.v1["memory"] / rel) == 0u);
    sys::SpawnOptions o;
    for (const auto& fd : fds) o.cgroup_procs.push_back(fd.get());
    testing::TempDir tmp;
    o.log_file = tmp / "out";
    sys::Child child = sys::spawn({"/bin/sh", "-c", "grep Cpus_allowed_list /proc/self/status; cat /proc/self/cgroup; "
                                                    "exec python3 -c 'b = bytearray(256 << 20)'"},
                                  o);
    auto status = child.wait_for(30s);
    REQUIRE(status);
    CHECK(WIFSIGNALED(*status));
    CHECK(WTERMSIG(*status) == SIGKILL);
    std::string out = sys::read_file(tmp / "out");
    INFO(out);
    CHECK(out.find("Cpus_allowed_list:\t0\n") != std::string::npos);
    CHECK(out.find(":memory:/" + rel + "\n") != std::string::npos);
    CHECK(out.find(":pids:/" + rel + "\n") != std::string::npos);
    CHECK(sys::oom_kills(m.v1["memory"] / rel) == 1u);

    // Removed with the container's cgroup, in every hierarchy.
    CHECK(sys::remove_cgroup(rel) == Change::changed);
    for (const char* c : {"memory", "cpuset", "pids"}) CHECK_FALSE(fs::exists(m.v1[c] / rel));
}

TEST_CASE("v1: a value the kernel refuses names the file and the value", "[cgroup][resources]") {
    auto m = sys::controller_mounts();
    const std::string rel = test_parent() + "/bad.1";
    CgroupsGone gone{rel};
    sys::CgroupLimits l;
    l.cpus = "4095";  // no such CPU
    try {
        sys::create_limited_cgroups(m, rel, l);
        FAIL("a cpuset of a CPU this host does not have was accepted");
    } catch (const Error& e) {
        CHECK_THAT(e.message(), Catch::Contains("write '4095' to") && Catch::Contains("cpuset.cpus") &&
                                    Catch::Contains("Numerical result out of range"));
    }
    CHECK_THROWS_WITH(sys::create_limited_cgroups(m, "../escape", sys::CgroupLimits{64ull << 20, "", {}}),
                      Catch::Contains("not a relative path of our own"));
    // No limits: nothing made.
    CHECK(sys::create_limited_cgroups(m, test_parent() + "/none.1", {}).empty());
    CHECK_FALSE(fs::exists(m.v1["memory"] / test_parent() / "none.1"));
}

TEST_CASE("v2 (a directory shaped like a cgroup2 root): controllers enabled down the path, the "
          "limits in the one cgroup",
          "[cgroup][resources]") {
    testing::TempDir root;
    sys::ControllerMounts m;
    m.layout = sys::CgroupLayout::unified;
    m.unified = root.path();
    testing::write_file(root / "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma\n");
    testing::write_file(root / "cgroup.subtree_control", "");
    // What the kernel would show in the new cgroups: their interface files.
    const std::string rel = "aplspawn/db20.1";
    fs::create_directories(root / rel);
    testing::write_file(root / "aplspawn/cgroup.subtree_control", "");
    for (const char* f : {"memory.max", "memory.swap.max", "cpuset.cpus", "pids.max", "cgroup.procs"})
        testing::write_file(root / rel / f, "");
    sys::CgroupLimits l;
    l.memory_bytes = 256ull << 20;
    l.cpus = "1";
    l.tasks = 2048;
    auto fds = sys::create_limited_cgroups(m, rel, l);
    CHECK(fds.size() == 1);
    CHECK(read(root / "cgroup.subtree_control") == "+cpuset +memory +pids");
    CHECK(read(root / "aplspawn/cgroup.subtree_control") == "+cpuset +memory +pids");
    CHECK(read(root / rel / "memory.max") == "268435456");
    CHECK(read(root / rel / "memory.swap.max") == "0");
    CHECK(read(root / rel / "cpuset.cpus") == "1");
    CHECK(read(root / rel / "pids.max") == "2048");
    // Where status reads OOM kills on v2.
    testing::write_file(root / rel / "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
    CHECK(sys::oom_kills(root / rel) == 1u);
}
