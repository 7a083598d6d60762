// Host-wide kernel limits a fleet can run into, checked before spawn starts anything: what breaks
// between 20 and 200 containers on one host is named with the sysctl and the value it needs,
// instead of containers that fail half-way through their boot (docs/spawn.md, "Host limits").
#pragma once

#include <map>
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
    long root_keys_limit = -1;          // kernel.keys.root_maxkeys
    long root_keys_used = -1;           // keys root holds now (/proc/key-users)
    long root_key_bytes_limit = -1;     // kernel.keys.root_maxbytes
    long root_key_bytes_used = -1;
    long conntrack_limit = -1;          // net.netfilter.nf_conntrack_max (no conntrack: -1)
    long conntrack_used = -1;           // nf_conntrack_count of this network namespace
    long open_files_soft = -1;          // RLIMIT_NOFILE of this process
    long open_files_hard = -1;
    std::map<std::string, long> bridge_ports;  // ports of each bridge asked about, now
};

// Reads them from /proc and rtnetlink (never throws: what cannot be read stays -1; a bridge
// that cannot be listed is left out). `bridges`: the bridges whose ports to count.
HostCounts read_host_counts(const std::vector<std::string>& bridges = {});

// What a spawn asks of the host.
struct Demand {
    long booted = 0;      // booted containers to start (running ones hold their share)
    long fleet_size = 0;  // containers of the fleet on the host once it is up
    long workers = 0;     // containers brought up at once (aplspawn's own open files)
    std::map<std::string, long> new_ports;  // bridge -> ports the containers to start add
};

// Per booted container (measured with the default image, docs/benchmarks.md): inotify
// instances its systemd and services hold (927 for 100 containers, Scale), tasks it runs at
// most during boot.
inline constexpr long kInotifyPerContainer = 10;
inline constexpr long kTasksPerContainer = 64;
// Root's kernel keys: a booted container's systemd holds one (~5 bytes) at N = 100 (measured,
// docs/benchmarks.md, Scale); twice that, for images that hold more. Other users' keys did
// not grow with the fleet (kernel.keys.maxkeys is per user, 200 by default): not checked.
inline constexpr long kKeysPerContainer = 2;
inline constexpr long kKeyBytesPerContainer = 64;
// Every container is a neighbour of the host on its bridge and the host (its gateway) one of
// the container, both in the kernel's one ARP table (gc_thresh3 counts every namespace's).
inline constexpr long kNeighboursPerContainer = 2;
// Connections tracked per container at once (SSH logins, Ansible's, NAT'ed traffic), with room.
inline constexpr long kConntrackPerContainer = 16;
// aplspawn's own open files per container brought up at once (its pidfd, log, netns and cgroup
// descriptors, the pipes of its ssh and ssh-keygen children: 589 at most with 64 at once,
// Scale), with room, and beyond them.
inline constexpr long kOpenFilesPerWorker = 12;
inline constexpr long kOpenFilesBase = 64;
// A Linux bridge numbers its ports with 10 bits, port 0 unused (BR_MAX_PORTS): not a sysctl.
inline constexpr long kBridgePortsMax = 1023;

// The open files a spawn of `workers` containers at once needs (aplspawn itself).
inline long open_files_needed(long workers) { return kOpenFilesBase + workers * kOpenFilesPerWorker; }

// The shortfalls for a spawn: one line each, naming the limit, its value, what is needed and
// what raises it ("SYSCTL is N; ... need about M: raise it first (sysctl -w SYSCTL=V, ...)").
// The open files of aplspawn itself are not a shortfall while the hard limit allows them:
// spawn raises its own soft limit (raise_open_files).
std::vector<std::string> limit_shortfalls(const HostCounts& host, const Demand& demand);

// Raises this process's soft RLIMIT_NOFILE to `needed` (at most the hard limit) when it is
// lower; returns the soft limit now. Children inherit it: ssh and systemd-nspawn cope with
// many (nspawn's payload, the container's systemd, sets its own).
long raise_open_files(long needed);

}  // namespace aplspawn::fleet
