#include "aplspawn/fleet/ssh.hpp"

#include "aplspawn/fleet/state.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace aplspawn::fleet {

SshTarget ssh_target(const config::Config& c, const std::string& ip) {
    return {ip, c.vars.user_name, c.common.ssh_private_key, StateDir(c).known_hosts()};
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
