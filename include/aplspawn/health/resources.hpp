// status, the limits of one running container (docs/resources.md):
//   [lxcfs]  "Checking lxcfs answers for X": when the container has lxcfs's meminfo over its
//            /proc/meminfo, reading it through the container's root works (a restarted lxcfs
//            leaves the running containers' binds broken: "Transport endpoint is not connected")
//   [oom]    "Checking out-of-memory kills in X": when its group has a memory limit, no process
//            of it was killed by the kernel's OOM killer (oom_kill of its memory cgroup); a kill
//            fails the check, naming how many, while the container keeps running
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/fleet/state.hpp"
#include "aplspawn/health/check.hpp"

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace aplspawn::health {

// The checks above that apply (none for a container without limits that does not use lxcfs).
// Never throws.
Report check_resources(const config::Container& ct, const fleet::ContainerRecord& record, pid_t leader);

// --- the pure part, for tests ---
// The oom check from the count read (nullopt: unreadable) and the limit.
CheckResult oom_check(const std::string& container, std::optional<std::uint64_t> kills,
                      std::uint64_t limit_bytes);

}  // namespace aplspawn::health
