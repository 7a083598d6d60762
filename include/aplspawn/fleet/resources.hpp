// A container's resource limits (groups.NAME.resources) turned into what each launcher does with
// them, decided once here: the cgroup limits the detached launcher writes before nspawn starts,
// the unit properties of the systemd launcher, nspawn's own arguments (the CPU affinity, and
// lxcfs's files bound over /proc so the guest sees its limits), and what status and the
// inventory say about them. docs/resources.md.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/sys/cgroup_limits.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace aplspawn::fleet {

// lxcfs as the containers get it: its mount point and the files below it that replace the
// guest's own (relative: "proc/meminfo", ...), each bound read-only at "/" + file.
struct LxcfsView {
    std::filesystem::path dir;  // /var/lib/lxcfs
    std::vector<std::string> files;
    friend bool operator==(const LxcfsView&, const LxcfsView&) = default;
};

// The files lxcfs can show a container in place of the host's: /proc/meminfo, cpuinfo, stat,
// uptime, loadavg, swaps and diskstats.
const std::vector<std::string>& lxcfs_proc_files();

// The cgroup limits of a group's resources (the detached launcher's).
sys::CgroupLimits cgroup_limits(const config::Resources& r);

// systemd-nspawn's arguments for the limits and lxcfs: --cpu-affinity= (nproc and Ansible's
// ansible_processor_nproc read the affinity mask, on every layout), then --bind-ro= of the lxcfs
// directory FIRST and of each of its files over the guest's (nspawn mounts what is below /proc
// from inside the container's root: the directory must be there before the files).
std::vector<std::string> resource_arguments(const config::Resources& r,
                                            const std::optional<LxcfsView>& lxcfs);

// One property of a container's systemd unit: MemoryMax= (t), MemorySwapMax= (t), TasksMax= (t)
// as a number, AllowedCPUs= (ay) as a CPU bitmask.
struct UnitProperty {
    std::string name;
    std::optional<std::uint64_t> number;
    std::vector<std::uint8_t> bytes;
    friend bool operator==(const UnitProperty&, const UnitProperty&) = default;
};
std::vector<UnitProperty> unit_properties(const config::Resources& r);

// The cgroup directory whose memory files count a container's memory: the detached launcher's
// own cgroup (record.cgroup) or the systemd unit's (machine.slice/UNIT), in the memory hierarchy
// (v1) or the unified one. Empty when there is none.
std::filesystem::path memory_cgroup_dir(const sys::ControllerMounts& mounts, const std::string& launcher,
                                        const std::string& cgroup, const std::string& unit);

// The inventory's host vars of a group's limits: aplspawn_memory_mb, aplspawn_cpus (each only
// when set).
std::vector<std::pair<std::string, std::uint64_t>> limit_host_vars(const config::Resources& r);

}  // namespace aplspawn::fleet
