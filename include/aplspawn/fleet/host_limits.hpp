// Host-wide kernel limits a fleet can run into, checked before spawn starts anything: what breaks
// between 20 and 200 containers on one host is named with the sysctl and the value it needs,
// instead of containers that fail half-way through their boot (docs/spawn.md, "Host limits").
#pragma once

#include <string>
#include <vector>

namespace aplspawn::fleet {

// What the host has and uses now (-1: unknown, not checked).
struct HostCounts {
    long inotify_instances_limit = -1;  // fs.inotify.max_user_instances (per user: root)
    long inotify_instances_used = -1;   // inotify fds of root's processes now (that we can see)
    long pid_max = -1;                  // kernel.pid_max
    long threads_max = -1;              // kernel.threads-max
    long tasks = -1;                    // tasks (threads) now
    long neigh_gc_thresh3 = -1;         // net.ipv4.neigh.default.gc_thresh3
};

// Reads them from /proc (never throws: what cannot be read stays -1).
HostCounts read_host_counts();

// Per booted container (measured with the default image, docs/benchmarks.md): inotify
// instances its systemd and services hold, tasks it runs at most during boot.
inline constexpr long kInotifyPerContainer = 8;
inline constexpr long kTasksPerContainer = 64;

// The shortfalls for starting `booted` more booted containers in a fleet of `fleet_size` on one
// bridge: one line each, "SYSCTL is N; ... need about M: raise it (sysctl -w SYSCTL=V)".
std::vector<std::string> limit_shortfalls(const HostCounts& host, long booted, long fleet_size);

}  // namespace aplspawn::fleet
