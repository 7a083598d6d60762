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
#include "aplspawn/fleet/provision.hpp"
#include "aplspawn/fleet/settle.hpp"
#include "aplspawn/fleet/state.hpp"
#include "aplspawn/output.hpp"

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace aplspawn::fleet {

using Clock = std::chrono::steady_clock;

// Checked before anything starts: systemd-nspawn and ssh are installed, the bridge exists (netup
// ran), every bind source of the containers' groups exists (Error::usage naming it), and in script
// mode bindHost and the startup script's place are sane. Throws Error.
void check_spawn_prerequisites(const config::Config& c,
                               const std::vector<const config::Container*>& containers);

struct BringUpContext {
    const config::Config& config;
    const StateDir& state;
    Launcher& launcher;
    KnownHostsFile& known_hosts;
    std::map<std::string, std::filesystem::path> lowers;  // image name -> its mounted lower layer
    std::map<std::string, std::string> authorized_keys;   // group name -> its public key line
    std::vector<HostEntry> fleet_hosts;                   // every container, for /etc/hosts
    Clock::time_point start;                              // when spawn began
    std::optional<std::chrono::seconds> timeout;          // --timeout: overrides readyTimeout
    std::optional<LxcfsView> lxcfs;                       // what containers bind of lxcfs

    // Every container answers SSH by its group's readyTimeout (or --timeout) after the start.
    Clock::time_point deadline(const config::Container& ct) const;
    const std::filesystem::path& lower_of(const config::Container& ct) const;
    const std::string& authorized_key_of(const config::Container& ct) const;
};

// The one decision about a container, read from what observe() saw; plan_bring_up prints it,
// bring_up carries it out.
enum class BringUp {
    leftover,  // only recorded: no longer in the config (spawn refuses while it runs)
    ready,     // running and ready: left alone, its /etc/hosts kept up to date
    resume,    // started by an interrupted run: its leader, address and SSH are checked
    start,     // overlay, provision, launch, address, SSH
};
BringUp decide_bring_up(const ContainerView& view);

// Brings one container up (never throws: failures are FAIL lines with the tail of its log).
Outcome bring_up(const BringUpContext& ctx, const ContainerView& view);

// A running, ready container of the fleet that spawn does not (re)start: only its /etc/hosts is
// brought up to date with the fleet's names (one OK line when it changed, none otherwise).
Outcome keep_hosts(const BringUpContext& ctx, const ContainerView& view);

// What bring_up would do, as PLAN lines (--dry-run).
Outcome plan_bring_up(const config::Config& c, const ContainerView& view);

// The last `n` lines of a log file as INFO lines ("  | text"), headed by its path.
std::vector<out::Line> log_tail_lines(const std::filesystem::path& log, int n);

}  // namespace aplspawn::fleet
