// What a group's resources become, decided once in fleet/resources.hpp and sys/cgroup_limits.hpp:
// the cgroup files each layout writes, nspawn's arguments (CPU affinity, lxcfs binds in the order
// nspawn needs), the systemd unit's properties, where status reads OOM kills, the inventory's vars.
#include "aplspawn/fleet/launch.hpp"
#include "aplspawn/fleet/resources.hpp"
#include "aplspawn/sys/cgroup_limits.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace aplspawn;

namespace {
config::Resources db() {
    config::Resources r;
    r.memory_bytes = 256ull << 20;
    r.cpus = {1};
    r.tasks = 2048;
    return r;
}
}  // namespace

TEST_CASE("cgroup limit files: v1 per controller, v2 in one cgroup, cpuset first", "[resources]") {
    auto l = fleet::cgroup_limits(db());
    CHECK(l.cpus == "1");
    using W = sys::CgroupWrite;
    CHECK(sys::limit_writes(sys::CgroupLayout::legacy, l) ==
          std::vector<W>{{"cpuset", "cpuset.cpus", "1"},
                         {"memory", "memory.limit_in_bytes", "268435456"},
                         {"memory", "memory.memsw.limit_in_bytes", "268435456", true},
                         {"pids", "pids.max", "2048"}});
    CHECK(sys::limit_writes(sys::CgroupLayout::unified, l) ==
          std::vector<W>{{"cpuset", "cpuset.cpus", "1"},
                         {"memory", "memory.max", "268435456"},
                         {"memory", "memory.swap.max", "0", true},
                         {"pids", "pids.max", "2048"}});
    CHECK(sys::limit_writes(sys::CgroupLayout::legacy, fleet::cgroup_limits({})).empty());
    CHECK(fleet::cgroup_limits({}).empty());
}

TEST_CASE("nspawn arguments: CPU affinity, then lxcfs's directory before its files", "[resources]") {
    fleet::LxcfsView lx{"/var/lib/lxcfs", {"proc/meminfo", "proc/uptime"}};
    CHECK(fleet::resource_arguments(db(), lx) ==
          std::vector<std::string>{"--cpu-affinity=1", "--bind-ro=/var/lib/lxcfs",
                                   "--bind-ro=/var/lib/lxcfs/proc/meminfo:/proc/meminfo",
                                   "--bind-ro=/var/lib/lxcfs/proc/uptime:/proc/uptime"});
    // Without limits a group still gets lxcfs's view (its own uptime and load); without lxcfs
    // the limits alone.
    CHECK(fleet::resource_arguments({}, lx).size() == 3);
    CHECK(fleet::resource_arguments(db(), std::nullopt) == std::vector<std::string>{"--cpu-affinity=1"});
    CHECK(fleet::resource_arguments({}, std::nullopt).empty());

    // In the shared argument list, before --boot and before a script's own arguments.
    fleet::LaunchSpec spec;
    spec.name = "db20";
    spec.root = "/r";
    spec.network_namespace = "/run/netns/aplspawn-db20";
    spec.resources = db();
    spec.lxcfs = lx;
    auto a = fleet::nspawn_arguments(spec);
    auto at = [&](const std::string& s) { return std::find(a.begin(), a.end(), s) - a.begin(); };
    CHECK(at("--cpu-affinity=1") < at("--boot"));
    CHECK(at("--bind-ro=/var/lib/lxcfs") < at("--bind-ro=/var/lib/lxcfs/proc/meminfo:/proc/meminfo"));
    CHECK(at("--boot") < static_cast<long>(a.size()));
}

TEST_CASE("systemd unit properties: numbers, and AllowedCPUs as a bit mask", "[resources]") {
    auto p = fleet::unit_properties(db());
    REQUIRE(p.size() == 4);
    CHECK(p[0] == fleet::UnitProperty{"MemoryMax", 268435456u, {}});
    CHECK(p[1] == fleet::UnitProperty{"MemorySwapMax", 0u, {}});
    CHECK(p[2] == fleet::UnitProperty{"TasksMax", 2048u, {}});
    CHECK(p[3] == fleet::UnitProperty{"AllowedCPUs", std::nullopt, {0x02}});
    config::Resources wide;
    wide.cpus = {0, 1, 9};
    CHECK(fleet::unit_properties(wide).back().bytes == std::vector<std::uint8_t>{0x03, 0x02});
    CHECK(fleet::unit_properties({}).empty());
}

TEST_CASE("the memory cgroup status reads: the detached cgroup or the unit's", "[resources]") {
    sys::ControllerMounts v1;
    v1.layout = sys::CgroupLayout::legacy;
    v1.v1["memory"] = "/sys/fs/cgroup/memory";
    CHECK(fleet::memory_cgroup_dir(v1, "detached", "aplspawn/db20.1", "") ==
          "/sys/fs/cgroup/memory/aplspawn/db20.1");
    CHECK(fleet::memory_cgroup_dir(v1, "systemd", "", "aplspawn-db20.service") ==
          "/sys/fs/cgroup/memory/machine.slice/aplspawn-db20.service");
    CHECK(fleet::memory_cgroup_dir(v1, "detached", "", "").empty());
    CHECK(fleet::memory_cgroup_dir(v1, "detached", "../x", "").empty());
    sys::ControllerMounts v2;
    v2.layout = sys::CgroupLayout::unified;
    v2.unified = "/sys/fs/cgroup";
    CHECK(fleet::memory_cgroup_dir(v2, "detached", "/aplspawn/db20.1", "") == "/sys/fs/cgroup/aplspawn/db20.1");
    sys::ControllerMounts none;
    CHECK(fleet::memory_cgroup_dir(none, "detached", "aplspawn/db20.1", "").empty());
}

TEST_CASE("inventory host vars of the limits", "[resources]") {
    using V = std::vector<std::pair<std::string, std::uint64_t>>;
    CHECK(fleet::limit_host_vars(db()) == V{{"aplspawn_memory_mb", 256}, {"aplspawn_cpus", 1}});
    CHECK(fleet::limit_host_vars({}).empty());
}
