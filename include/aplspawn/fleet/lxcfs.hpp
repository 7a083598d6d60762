// lxcfs, the FUSE daemon that shows each container its own /proc/meminfo, cpuinfo, uptime, ...
// (from the cgroups of the process that reads them). One daemon for the host: the running one
// when /var/lib/lxcfs is mounted (the Debian package's service on a systemd host), else the one
// spawn starts (detached, in its own cgroup, recorded in STATE/lxcfs.json). Never restarted under
// a running fleet: the containers' binds of a dead lxcfs stay broken until they restart.
#pragma once

#include "aplspawn/error.hpp"
#include "aplspawn/fleet/resources.hpp"
#include "aplspawn/fleet/state.hpp"

#include <filesystem>
#include <optional>
#include <string>

namespace aplspawn::fleet {

inline constexpr std::string_view kLxcfsDir = "/var/lib/lxcfs";

// The lxcfs mount at dir (a fuse.lxcfs filesystem) and the files it offers of lxcfs_proc_files();
// nullopt when nothing is mounted there. `answers`: whether reading its meminfo works (a mount
// whose daemon died says "Transport endpoint is not connected").
struct LxcfsMount {
    LxcfsView view;
    bool answers = false;
};
std::optional<LxcfsMount> find_lxcfs(const std::filesystem::path& dir = kLxcfsDir);

// Before anything changes, when a group has resources: lxcfs is mounted, or its program is
// installed (else an Error naming the Debian package).
void require_lxcfs(const std::filesystem::path& dir = kLxcfsDir);

struct LxcfsResult {
    std::optional<LxcfsView> view;  // nullopt: containers keep the host's /proc files
    Change change = Change::unchanged;  // changed: started here
    std::string note;                   // a line for the user (not installed, ...)
};

// What spawn uses: the running lxcfs; else, when the program is installed, one started now
// (`lxcfs -f -l --pidfile STATE/lxcfs.pid DIR`, log STATE/lxcfs.log, bounded wait for its
// mount). When `required` (a selected group has resources), lxcfs missing (an Error naming the
// package), failing to start, or a mount that does not answer (restarting lxcfs under running
// containers would break theirs) is an Error; otherwise each is a note and the containers see
// the host's /proc.
LxcfsResult ensure_lxcfs(const StateDir& state, bool required,
                         const std::filesystem::path& dir = kLxcfsDir);

// Whether the container whose PID 1 is `leader` has lxcfs's meminfo over its /proc/meminfo
// (from its mountinfo), and whether reading it through its root answers. nullopt: it does not
// use lxcfs.
std::optional<bool> container_lxcfs_answers(pid_t leader);

}  // namespace aplspawn::fleet
