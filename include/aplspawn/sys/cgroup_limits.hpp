// Resource limits in cgroups of our own: memory, a cpuset and a task count, written before the
// process that will hold them moves in (see sys/cgroup.hpp for the cgroups themselves). Two
// layouts: unified (cgroup v2 with the memory, cpuset and pids controllers in its root's
// cgroup.controllers) and legacy (v1 or hybrid: each controller its own hierarchy, as on a
// Debian host without systemd). Knows nothing of containers.
#pragma once

#include "aplspawn/error.hpp"
#include "aplspawn/sys/fd.hpp"

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace aplspawn::sys {

struct CgroupLimits {
    std::optional<std::uint64_t> memory_bytes;  // memory (no swap beyond it)
    std::string cpus;                           // a cpuset in the kernel's list form ("0-1"); "" none
    std::optional<std::uint64_t> tasks;         // processes and threads at once
    bool empty() const { return !memory_bytes && cpus.empty() && !tasks; }
};

enum class CgroupLayout { unified, legacy };

// One limit file written: the controller ("memory", "cpuset", "pids"), the file in the cgroup,
// the value. optional: a file some kernels lack (swap accounting off), skipped when absent.
struct CgroupWrite {
    std::string controller;
    std::string file;
    std::string value;
    bool optional = false;
    friend bool operator==(const CgroupWrite&, const CgroupWrite&) = default;
};

// The writes that set `limits`, in the order they must happen (a cpuset's mems before a process
// may join; memory before memory+swap). Pure.
std::vector<CgroupWrite> limit_writes(CgroupLayout layout, const CgroupLimits& limits);

// Where the controllers are: the layout, the unified mount (when there is one) and, on a legacy
// layout, each v1 controller's own hierarchy by name.
struct ControllerMounts {
    CgroupLayout layout = CgroupLayout::legacy;
    std::filesystem::path unified;
    std::map<std::string, std::filesystem::path, std::less<>> v1;  // "memory" -> /sys/fs/cgroup/memory
    // The directory a controller's files of the cgroup `relative` are in; empty when the
    // controller is nowhere.
    std::filesystem::path dir(std::string_view controller, const std::string& relative) const;
};

// Read from /proc/self/mountinfo (and the unified root's cgroup.controllers).
ControllerMounts controller_mounts();

// Creates `relative` (e.g. "aplspawn/NAME.ID") in every hierarchy a limit needs, makes the
// controllers available down to it (v2: "+memory" ... in each ancestor's cgroup.subtree_control;
// v1 cpuset: each new ancestor takes its parent's cpus and mems), writes the limits, and opens
// each such cgroup's cgroup.procs for writing (SpawnOptions::cgroup_procs). Throws Error naming
// the file and the value a kernel refused; what it made then is left for remove_cgroup.
std::vector<UniqueFd> create_limited_cgroups(const ControllerMounts& mounts,
                                             const std::string& relative,
                                             const CgroupLimits& limits);

// The v1 hierarchies limits use (memory, cpuset, pids), for removal alongside the systemd ones.
std::vector<std::filesystem::path> limit_cgroup_mounts();

// The number of processes the kernel's OOM killer killed in the memory cgroup at `dir`
// ("oom_kill N" of memory.events on v2, of memory.oom_control on v1); nullopt when unknown.
std::optional<std::uint64_t> oom_kills(const std::filesystem::path& dir);

}  // namespace aplspawn::sys
