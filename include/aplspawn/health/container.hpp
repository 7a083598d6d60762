// status, one container: the original's lines after "Checking container X, ip A/P" (ids for
// --json in brackets):
//   [machine]  "Checking machinectl status for container X (ip A)": its recorded systemd-nspawn
//              runs (same pid and start time); on a systemd host also registered with machined,
//              with the same leader
//   [overlay]  "Checking overlayFS mount": the overlay of the lower layer, its upper and work
//              directories is what is mounted at homePath/X (mountinfo)
//   [leader]   "Checking leader process P": the recorded PID 1 of the container is alive and is
//              the image's init (boot mode) or startupScript (script mode)
//   [ping]     "Checking ping to A": an ICMP echo reply from the host (net/icmp.hpp)
//   [ssh]      "Checking ssh connection to A": login as cntVariables.userName with the fleet key,
//              BatchMode, the fleet's known_hosts, strict host key checking (fleet/ssh.hpp)
// then every interface, read in the container's network namespace (rtnetlink), and for each
// interface on a network of the networks section an echo from the host's address on it:
//   [interface.host0]    "Checking interface host0 has A/P": there, up, with that address
//   [interface.NET]      "Checking interface NET has B/Q"    (one per network of its group)
//   [ping.NET]           "Checking ping to B on network NET"
// A container that does not run gets leader, ping, ssh and these failed as "not checked", at
// once.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/health/check.hpp"
#include "aplspawn/sys/mount.hpp"

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace aplspawn::health {

struct ContainerReport {
    std::string name;
    std::string group;
    std::string ip;
    int prefix = 0;
    Report checks;
    std::string header() const;  // "Checking container X, ip A/P"
    bool ok() const;
    // The ids of the checks that failed, in order.
    std::vector<std::string> failed() const;
};

struct ContainerCheckOptions {
    std::chrono::milliseconds ping_timeout{1000};
    std::chrono::milliseconds ssh_timeout{10000};
    // Non-empty when the network checks found the bridge missing or down: ping and ssh are then
    // failed with this reason instead of being tried.
    std::string network_problem;
    // The same per network (name -> "bridge apsbk0 of network backend is down"): its pings.
    std::map<std::string, std::string> network_problems;
};

// Never throws: a check that cannot be made fails with the reason in its detail.
ContainerReport check_container(const config::Config& c, const config::Container& ct,
                                const std::vector<sys::MountInfo>& mounts,
                                const ContainerCheckOptions& options);

// --- the pure part, for tests ---

// The leader process as the host sees it.
struct LeaderFacts {
    pid_t pid = 0;
    std::string comm;               // /proc/PID/comm
    std::vector<std::string> argv;  // /proc/PID/cmdline
};

// What the leader check expects: "systemd" (boot mode: the image's init) or the startup script.
std::string expected_leader(const config::Container& ct);

// nullopt when the leader is the expected program, else why not. Boot mode: systemd (comm
// "systemd", or argv[0] one of the inits systemd-nspawn --boot runs). Script mode: the startup
// script as argv[0], or as argv[1] of its interpreter (a #! script). `recorded`: the process is
// the very one spawn recorded as PID 1, so in script mode a script that exec'd its final command
// (exec sleep infinity) still counts.
std::optional<std::string> leader_mismatch(config::StartMode mode, const std::string& startup_script,
                                           const LeaderFacts& facts, bool recorded);

}  // namespace aplspawn::health
