// Starting and stopping one container's systemd-nspawn, with or without systemd on the host.
//   detached: no systemd as PID 1 (this build machine, CI): nspawn started in its own session
//             with --register=no --keep-unit, pid and log kept in the state directory.
//   systemd:  a transient service (systemd-run / sd-bus), nspawn with --keep-unit, registered
//             with machined: machinectl, journalctl -M, systemctl and resource limits work.
// Both return a ContainerRecord whose nspawn_pid is the nspawn process (the unit's MainPID), so
// fleet::is_running() works the same for both.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/error.hpp"
#include "aplspawn/fleet/resources.hpp"
#include "aplspawn/fleet/state.hpp"
#include "aplspawn/sys/fd.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace aplspawn::fleet {

struct Bind {
    fs::path host;
    std::string container;  // absolute path inside the container
    bool read_only = true;
};

struct LaunchSpec {
    std::string name;  // machine name
    std::string group; // recorded in the ContainerRecord
    fs::path root;     // the merged overlay directory
    // The network namespace aplspawn made for it (/run/netns/aplspawn-NAME, fleet/network.hpp),
    // with every interface, address and route in place. Both launchers start systemd-nspawn IN
    // it (the detached one enters it between fork and exec, the systemd one sets the unit's
    // NetworkNamespacePath=), without a network option of nspawn's, so nspawn takes it for the
    // container's own network: the sysfs it mounts for the container belongs to it. Given
    // --network-namespace-path= instead, nspawn 252 mounts that sysfs before it joins the
    // namespace, and the container's /sys/class/net lists the HOST's interfaces (Ansible's
    // ansible_interfaces among them). As for a namespace of its own, the container keeps
    // CAP_NET_ADMIN (its routes, firewall, sysctls: all of its own namespace) and a writable
    // /proc/sys/net (nspawn_environment).
    fs::path network_namespace;
    config::StartMode mode = config::StartMode::boot;
    std::vector<std::string> command;  // script mode: startupScript (PID 1); boot: empty
    std::vector<Bind> binds;
    std::vector<std::pair<std::string, std::string>> env;  // --setenv=KEY=VALUE
    fs::path log_file;                                     // detached: nspawn's output
    std::string image;                                     // recorded in the ContainerRecord
    std::string ip;                                        // recorded in the ContainerRecord
    config::Resources resources;       // the group's limits (fleet/resources.hpp)
    std::optional<LxcfsView> lxcfs;    // lxcfs's files over the guest's /proc ones
};

// systemd-nspawn's arguments for a spec (without the launcher's own additions such as
// --register=no): one place, so both launchers start the same container.
std::vector<std::string> nspawn_arguments(const LaunchSpec& spec);

// The environment systemd-nspawn itself runs with ("KEY=VALUE"; not the container's), for both
// launchers. In a network namespace of aplspawn's: SYSTEMD_NSPAWN_API_VFS_WRITABLE=network, so
// nspawn mounts the container's sysfs from inside its own namespaces and leaves /proc/sys/net
// writable, as it does for a network namespace it made itself.
std::vector<std::string> nspawn_environment(const LaunchSpec& spec);

// The spec's network namespace, open and checked to be one (sys::open_netns_path), or an empty
// fd when it has none. Both launchers open it before they start anything: a namespace that is
// missing (stop or an interrupted run took it down) or not a namespace is refused with the same
// message ("open network namespace PATH: ..."), and no process or unit is made.
sys::UniqueFd open_network_namespace(const LaunchSpec& spec);

class Launcher {
public:
    virtual ~Launcher() = default;
    virtual std::string kind() const = 0;  // "detached" | "systemd"
    // Starts nspawn and returns once its pid is known (not when the container is ready).
    virtual ContainerRecord start(const LaunchSpec& spec) = 0;
    // The container's PID 1 as seen from the host, once it exists.
    virtual std::optional<pid_t> leader(const ContainerRecord& record) = 0;
    // Graceful stop (poweroff / SIGRTMIN+3 in boot mode, SIGTERM in script mode), wait up to
    // grace, then kill. Returns Change::unchanged when it was not running.
    virtual Change stop(const ContainerRecord& record, std::chrono::seconds grace) = 0;
};

// The launcher for this host: systemd when /run/systemd/system exists (and machined answers),
// else detached.
std::unique_ptr<Launcher> make_launcher();

// The two implementations (launch_detached.cpp, launch_systemd.cpp). make_systemd_launcher()
// returns nullptr when the host has no systemd as PID 1 or machined does not answer.
std::unique_ptr<Launcher> make_detached_launcher();
std::unique_ptr<Launcher> make_systemd_launcher();

// Removes the cgroups of detached containers that ended without a stop (killed, or their host
// namespace gone) and hold no process any more (sys::remove_unused_cgroups); says how many in a
// debug line.
void remove_stale_cgroups();

// A graceful stop's wait, for both launchers: up to `grace` for gone(slice) (which waits at most
// `slice`) to say true, calling ask_again() every 1.5 s while it does not. A systemd still early
// in its boot has no handler yet and drops a halt request (PID 1 of a namespace ignores what it
// does not handle), so the request is repeated. true when gone in time.
bool wait_asking_again(std::chrono::milliseconds grace,
                       const std::function<bool(std::chrono::milliseconds)>& gone,
                       const std::function<void()>& ask_again);

}  // namespace aplspawn::fleet
