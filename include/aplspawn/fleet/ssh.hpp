// SSH to a container with the fleet's key, checking its host key against the fleet's own
// known_hosts (state/known_hosts, written at spawn from the keys provisioning generated): strict
// host key checking from the first connection, never the user's ~/.ssh/known_hosts, never
// trust-on-first-use. Used by spawn (ready check) and health (the ssh check).
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/sys/process.hpp"

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace aplspawn::fleet {

namespace fs = std::filesystem;

struct SshTarget {
    std::string ip;
    std::string user;
    fs::path private_key;
    fs::path known_hosts;
};

// The target of a container of the fleet: its IP, its group's cntVariables.userName and key,
// state/known_hosts.
SshTarget ssh_target(const config::Config& c, const config::Container& ct);

// ssh's argv for a target and a remote command:
//   ssh -F none -i KEY -o BatchMode=yes -o StrictHostKeyChecking=yes
//       -o UserKnownHostsFile=KNOWN_HOSTS -o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes
//       -o ConnectTimeout=N -o LogLevel=ERROR USER@IP -- COMMAND...
// (-F none: no ~/.ssh/config or /etc/ssh/ssh_config can add a proxy or another identity.)
std::vector<std::string> ssh_argv(const SshTarget& t, const std::vector<std::string>& command,
                                  std::chrono::milliseconds timeout);

// Runs the command over SSH; the whole run (connect included) is bounded by timeout. Never
// throws for a failed connection: the result says (exit 255 and ssh's message in err).
sys::RunResult ssh_run(const SshTarget& t, const std::vector<std::string>& command,
                       std::chrono::milliseconds timeout);

}  // namespace aplspawn::fleet
