// What both launchers share: systemd-nspawn's arguments for a container, and the choice of the
// launcher for this host.
#include "aplspawn/fleet/launch.hpp"

#include "aplspawn/output.hpp"
#include "aplspawn/sys/netns.hpp"

#include <fmt/format.h>

#include <sys/stat.h>

namespace aplspawn::fleet {
namespace {

// --bind= takes SRC:DST with backslash escapes: "\:" is a colon inside a path.
std::string escape_bind_path(const std::string& p) {
    std::string out;
    for (char c : p) {
        if (c == '\\' || c == ':') out.push_back('\\');
        out.push_back(c);
    }
    return out;
}

}  // namespace

bool wait_asking_again(std::chrono::milliseconds grace,
                       const std::function<bool(std::chrono::milliseconds)>& gone,
                       const std::function<void()>& ask_again) {
    constexpr std::chrono::milliseconds kAskAgain{1500};
    const auto deadline = std::chrono::steady_clock::now() + grace;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (gone(std::min(left, kAskAgain))) return true;
        if (left <= kAskAgain) return false;
        ask_again();
    }
}

std::vector<std::string> nspawn_arguments(const LaunchSpec& spec) {
    // Long options only: list_nspawn_processes() finds a container an interrupted run started
    // by --machine= and --directory= in its command line.
    std::vector<std::string> a{
        "--quiet",
        "--directory=" + spec.root.string(),
        "--machine=" + spec.name,
        // The container's console (boot messages, the startup script's output) goes to nspawn's
        // stdout: the log file of the detached launcher, the journal of the systemd one.
        "--console=read-only",
        // Leave the host alone: no journal links under /var/log/journal, and the container's
        // /etc/resolv.conf is the one provisioning wrote.
        "--link-journal=no",
        "--resolv-conf=off",
    };
    // Its own network namespace: its root manages it (nspawn keeps CAP_NET_ADMIN only for a
    // namespace it made itself).
    if (!spec.network_namespace.empty()) a.push_back("--capability=CAP_NET_ADMIN");
    for (const auto& b : spec.binds)
        a.push_back(fmt::format("{}={}:{}", b.read_only ? "--bind-ro" : "--bind",
                                escape_bind_path(b.host.string()), escape_bind_path(b.container)));
    for (const auto& [k, v] : spec.env) a.push_back(fmt::format("--setenv={}={}", k, v));
    auto limits = resource_arguments(spec.resources, spec.lxcfs);
    a.insert(a.end(), limits.begin(), limits.end());
    if (spec.mode == config::StartMode::boot) {
        // nspawn turns SIGTERM into SIGRTMIN+3 for the container's systemd: a clean halt.
        a.push_back("--boot");
    } else {
        // Script mode: without this, nspawn answers SIGTERM with SIGKILL for everything inside.
        a.push_back("--kill-signal=SIGTERM");
        a.push_back("--");
        a.insert(a.end(), spec.command.begin(), spec.command.end());
    }
    return a;
}

std::vector<std::string> nspawn_environment(const LaunchSpec& spec) {
    if (spec.network_namespace.empty()) return {};
    return {"SYSTEMD_NSPAWN_API_VFS_WRITABLE=network"};
}

sys::UniqueFd open_network_namespace(const LaunchSpec& spec) {
    if (spec.network_namespace.empty()) return {};
    return sys::open_netns_path(spec.network_namespace);
}

std::unique_ptr<Launcher> make_launcher() {
    struct stat st;
    if (::stat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode)) {
        // systemd is PID 1: containers belong in units registered with machined. The systemd
        // launcher (src/fleet/launch_systemd.cpp) returns nullptr until it is built or when
        // machined does not answer; the detached launcher works on such a host too.
        if (auto l = make_systemd_launcher()) return l;
        out::info("systemd runs on this host, but containers are started detached "
                  "(--register=no): machinectl will not list them");
    }
    return make_detached_launcher();
}

}  // namespace aplspawn::fleet
