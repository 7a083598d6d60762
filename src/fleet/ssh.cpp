#include "aplspawn/fleet/ssh.hpp"

#include "aplspawn/fleet/state.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace aplspawn::fleet {
namespace {

constexpr std::string_view kFastKex =
    "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,"
    "diffie-hellman-group14-sha256";

}  // namespace

SshTarget ssh_target(const config::Config& c, const config::Container& ct) {
    return {ct.ip.str(), ct.vars().user_name, ct.common().ssh_private_key, StateDir(c).known_hosts()};
}

std::vector<std::string> ssh_argv(const SshTarget& t, const std::vector<std::string>& command,
                                  std::chrono::milliseconds timeout) {
    auto secs = std::max<long long>(
        1, std::chrono::duration_cast<std::chrono::seconds>(timeout + std::chrono::milliseconds(999))
               .count());
    std::vector<std::string> argv{"ssh",
                                  "-F", "none",
                                  "-i", t.private_key.string(),
                                  "-o", "BatchMode=yes",
                                  "-o", "StrictHostKeyChecking=yes",
                                  "-o", "UserKnownHostsFile=" + t.known_hosts.string(),
                                  "-o", "GlobalKnownHostsFile=/dev/null",
                                  "-o", "IdentitiesOnly=yes",
                                  "-o", fmt::format("ConnectTimeout={}", secs),
                                  "-o", "LogLevel=ERROR",
                                  // The default sntrup761 hybrid costs the client ~60 ms of CPU
                                  // per login, two thirds of its whole share: a fleet's status is
                                  // many logins over a host-local bridge. Old servers still match
                                  // the fallbacks.
                                  "-o", "KexAlgorithms=" + std::string(kFastKex),
                                  // known_hosts is the fleet's record: ssh never rewrites it.
                                  "-o", "UpdateHostKeys=no",
                                  t.user + "@" + t.ip,
                                  "--"};
    argv.insert(argv.end(), command.begin(), command.end());
    return argv;
}

sys::RunResult ssh_run(const SshTarget& t, const std::vector<std::string>& command,
                       std::chrono::milliseconds timeout) {
    sys::RunOptions o;
    o.timeout = timeout;
    return sys::run(ssh_argv(t, command, timeout), o);
}

}  // namespace aplspawn::fleet
