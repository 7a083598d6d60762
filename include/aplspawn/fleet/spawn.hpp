// Bringing containers up: from the mounted lower layer to a container that answers SSH.
// Per container (run in parallel by cli/spawn.cpp, reported in name order):
//   overlay (upper/work/merged) -> provision into the merged root -> the fleet's known_hosts
//   -> launch systemd-nspawn on the bridge -> its leader -> static IP on host0 over netlink
//   -> SSH answers as the configured user with strict host key checking -> record ready.
// A container that is already running and ready is left alone ("already so"); one an interrupted
// run started but never saw ready is picked up where it stands (leader, IP, SSH).
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/fleet/known_hosts.hpp"
#include "aplspawn/fleet/launch.hpp"
#include "aplspawn/fleet/observe.hpp"
#include "aplspawn/fleet/outcome.hpp"
#include "aplspawn/fleet/settle.hpp"
#include "aplspawn/fleet/state.hpp"
#include "aplspawn/output.hpp"

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace aplspawn::fleet {

using Clock = std::chrono::steady_clock;

// Checked before anything starts: systemd-nspawn and ssh are installed, the bridge exists (netup
// ran), and in script mode bindHost and the startup script's place are sane. Throws Error.
void check_spawn_prerequisites(const config::Config& c);

struct BringUpContext {
    const config::Config& config;
    const StateDir& state;
    Launcher& launcher;
    KnownHostsFile& known_hosts;
    std::filesystem::path lower;  // the mounted lower layer
    std::string authorized_key;   // the fleet's public key line
    Clock::time_point deadline;   // every container answers SSH by then
};

// Brings one container up (never throws: failures are FAIL lines with the tail of its log).
Outcome bring_up(const BringUpContext& ctx, const ContainerView& view);

// What bring_up would do, as PLAN lines (--dry-run).
Outcome plan_bring_up(const config::Config& c, const ContainerView& view);

// The last `n` lines of a log file as INFO lines ("  | text"), headed by its path.
std::vector<out::Line> log_tail_lines(const std::filesystem::path& log, int n);

}  // namespace aplspawn::fleet
