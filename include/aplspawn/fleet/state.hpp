// The fleet's state directory (path.stateDirectory, default WORKDIR/state): what aplspawn
// started and created, so that later runs (stop, status, pids, netdown) act on exactly that.
//
//   lock                  flock held by the running aplspawn (sys/lock.hpp)
//   net.json              what netup created (net module)
//   known_hosts           the fleet's SSH host keys, learned at spawn
//   containers/NAME.json  one record per started container (below)
//   containers/NAME.log   systemd-nspawn's output (detached launcher)
//   networks/NAME.json    the container's network namespace and veths (fleet/network.hpp),
//                         from before they exist until after they are gone
//   members               every container this fleet made ("NAME GROUP" lines), kept until
//                         cleanup: a container the config no longer has still has data here
//
// Every file is written atomically (sys::write_file_atomic).
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/fleet/processes.hpp"

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace aplspawn::fleet {

namespace fs = std::filesystem;

struct ContainerRecord {
    std::string name;
    std::string ip;
    std::string group;     // its group in the config it was started from
    std::string mode;      // "boot" | "script"
    std::string launcher;  // "detached" (no systemd on the host) | "systemd"
    std::string unit;      // systemd unit name when launcher == "systemd"
    std::string cgroup;    // detached: its cgroup ("aplspawn/NAME.ID" below each systemd hierarchy)
    pid_t nspawn_pid = 0;  // the systemd-nspawn process
    std::uint64_t nspawn_start_time = 0;  // /proc/PID/stat starttime: guards against pid reuse
    pid_t leader_pid = 0;  // the container's PID 1 as seen from the host (init or startupScript)
    std::uint64_t leader_start_time = 0;
    std::string boot_id;   // the boot both processes belong to (sys::boot_id); a record of
                           // another boot (or without one) names no live process
    std::string image;     // image name (its lower layer directory)
    std::int64_t started_at = 0;  // unix seconds
    fs::path root;         // the merged overlay directory nspawn runs on (--directory)
    fs::path netns;        // the network namespace it runs in (/run/netns/aplspawn-NAME)
    bool ready = false;    // spawn saw it answer SSH; false while it is still coming up

    // The recorded processes, for fleet::alive, send_signal, wait_gone (fleet/processes.hpp).
    ProcessRef nspawn() const { return {nspawn_pid, nspawn_start_time, boot_id}; }
    ProcessRef leader() const { return {leader_pid, leader_start_time, boot_id}; }
    void set_nspawn(const ProcessRef& p);
    void set_leader(const ProcessRef& p);
};

class StateDir {
public:
    explicit StateDir(fs::path dir) : dir_(std::move(dir)) {}
    explicit StateDir(const config::Config& c) : dir_(c.paths.state) {}

    const fs::path& dir() const { return dir_; }
    fs::path containers_dir() const { return dir_ / "containers"; }
    fs::path record_path(const std::string& name) const;
    fs::path log_path(const std::string& name) const;
    fs::path known_hosts() const { return dir_ / "known_hosts"; }
    fs::path net_state() const { return dir_ / "net.json"; }

    // The fleet's members: containers spawn made (their data stays until cleanup), with the group
    // each was made in, sorted by name.
    std::vector<std::pair<std::string, std::string>> members() const;
    void add_members(const std::vector<std::pair<std::string, std::string>>& members) const;
    void remove_members(const std::vector<std::string>& names) const;  // all: the file goes

    std::optional<ContainerRecord> load(const std::string& name) const;
    void save(const ContainerRecord& record) const;  // atomic; creates directories
    void remove(const std::string& name) const;     // record only; the log stays

private:
    fs::path dir_;
};

// The record's systemd-nspawn process is alive and is the one recorded (same boot, pid and
// start time: fleet::alive).
bool is_running(const ContainerRecord& record);

// The record is not of this boot (another boot id, or none: written by an older aplspawn).
bool earlier_boot(const ContainerRecord& record);

// Names of every container with a record in the state directory (sorted).
std::vector<std::string> recorded_names(const StateDir& state);

// Records of the fleet's containers whose nspawn is alive, in fleet (name) order.
std::vector<ContainerRecord> running(const config::Config& c);

}  // namespace aplspawn::fleet
