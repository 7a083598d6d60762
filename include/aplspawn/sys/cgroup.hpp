// cgroups of our own for processes we start, in the hierarchies systemd uses: the unified one
// (cgroup2) and, on a hybrid or legacy host, the named v1 hierarchy "systemd". Other v1
// hierarchies (memory, pids, ...) are left alone. On a host without systemd as PID 1 nobody
// else hands out cgroups: two systemd-nspawn started from one cgroup would put their containers'
// systemd in one shared cgroup, where each removes the other's unit cgroups.
#pragma once

#include "aplspawn/error.hpp"
#include "aplspawn/sys/fd.hpp"

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace aplspawn::sys {

// Where those hierarchies are mounted (from /proc/self/mountinfo); empty when none is.
std::vector<std::filesystem::path> systemd_cgroup_mounts();

// Creates `relative` (e.g. "aplspawn/NAME.ID") below the root of each such hierarchy and opens
// its cgroup.procs for writing: a child writes "0" there before exec to move itself in (see
// SpawnOptions::cgroup_procs). Throws Error when a hierarchy refuses.
std::vector<UniqueFd> create_cgroups(const std::string& relative);

// Removes `relative` in each such hierarchy (and in the v1 memory, cpuset and pids ones, where
// limits put it: sys/cgroup_limits.hpp), its child cgroups first, with rmdir only (a cgroup
// that still holds processes is kept), then its parent when that is empty. Never throws.
Change remove_cgroup(const std::string& relative);

// Removes the cgroups directly below `parent` (e.g. "aplspawn") in each such hierarchy whose whole
// tree holds no process and that are at least min_age old (a younger one may be waiting for the
// process about to move in): what containers that died without a stop left. Returns how many
// went (by name, counted once for all hierarchies). Never throws.
std::size_t remove_unused_cgroups(const std::string& parent, std::chrono::seconds min_age);

// The cgroup of a process in the unified hierarchy, else in the named "systemd" one
// ("/aplspawn/NAME.ID"), from /proc/PID/cgroup; "" when unknown.
std::string cgroup_of(pid_t pid);

}  // namespace aplspawn::sys
