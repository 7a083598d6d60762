// The detached launcher, for hosts without systemd as PID 1 (and as the fallback on systemd
// hosts): systemd-nspawn in its own session with --register=no --keep-unit, its output in the
// state directory's NAME.log, its pid and start time in the container's record.
#include "aplspawn/fleet/launch.hpp"

#include "aplspawn/fleet/processes.hpp"
#include "aplspawn/output.hpp"
#include "aplspawn/sys/cgroup.hpp"
#include "aplspawn/sys/fd.hpp"
#include "aplspawn/sys/cgroup_limits.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/process.hpp"
#include "aplspawn/sys/programs.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <ctime>

namespace aplspawn::fleet {
namespace {

using namespace std::chrono_literals;

// Once graceful stop and SIGKILL of the container's PID 1 happened: how long nspawn may take to
// notice and exit.
constexpr auto kAfterKill = 5000ms;
// The parent of every container's own cgroup (NAME.ID below it), in each systemd hierarchy.
constexpr std::string_view kCgroupParent = "aplspawn";

class DetachedLauncher final : public Launcher {
public:
    std::string kind() const override { return "detached"; }

    ContainerRecord start(const LaunchSpec& spec) override {
        auto nspawn = with_context(fmt::format("start {}", spec.name),
                                   [] { return sys::require_program("systemd-nspawn"); });
        std::vector<std::string> argv{nspawn.string(), "--register=no", "--keep-unit"};
        auto args = nspawn_arguments(spec);
        argv.insert(argv.end(), args.begin(), args.end());

        sys::SpawnOptions o;
        if (!spec.log_file.empty()) {
            sys::ensure_dir(spec.log_file.parent_path(), 0700);
            // One previous log is kept (NAME.log.1): the one of the run that failed last time.
            std::error_code ec;
            if (fs::exists(spec.log_file, ec))
                fs::rename(spec.log_file, fs::path(spec.log_file.string() + ".1"), ec);
            sys::write_file_atomic(spec.log_file,
                                   fmt::format("aplspawn: {}\n", fmt::join(argv, " ")), 0640);
            o.log_file = spec.log_file;
        }
        o.new_session = true;  // not killed with our terminal; survives aplspawn itself
        // nspawn starts in the container's network namespace (see launch.hpp).
        sys::UniqueFd netns = with_context(fmt::format("start {}", spec.name),
                                           [&] { return open_network_namespace(spec); });
        if (netns) o.netns_fd = netns.get();
        o.env = nspawn_environment(spec);
        // A cgroup of its own (sys/cgroup.hpp): without one, every container's systemd would
        // share, and fight over, the cgroup aplspawn runs in.
        const std::string cgroup = fmt::format("{}/{}.{}", kCgroupParent, spec.name, unique_suffix());
        std::vector<sys::UniqueFd> cgroup_fds = sys::create_cgroups(cgroup);
        for (const auto& fd : cgroup_fds) o.cgroup_procs.push_back(fd.get());
        sys::Child child;
        try {
            // Its limits in the same cgroup's memory, cpuset and pids controllers (or v2 files)
            // before nspawn starts: everything in the container is under them from its start.
            auto limit_fds = with_context(fmt::format("limits of {}", spec.name), [&] {
                return sys::create_limited_cgroups(sys::controller_mounts(), cgroup,
                                                   cgroup_limits(spec.resources));
            });
            for (auto& fd : limit_fds) {
                o.cgroup_procs.push_back(fd.get());
                cgroup_fds.push_back(std::move(fd));
            }
            child = sys::spawn(argv, o);
        } catch (...) {
            sys::remove_cgroup(cgroup);
            throw;
        }

        ContainerRecord r;
        r.name = spec.name;
        r.ip = spec.ip;
        r.group = spec.group;
        r.mode = spec.mode == config::StartMode::boot ? "boot" : "script";
        r.launcher = kind();
        r.nspawn_pid = child.pid();  // for the message below; set_nspawn once it is proven
        r.cgroup = cgroup;
        auto ref = process_ref(child.pid());
        if (!ref) {
            // Gone already: collect its status for the message (the log says why).
            auto status = child.wait_for(1000ms);
            throw Error(fmt::format("start {}: systemd-nspawn exited at once{}", spec.name,
                                    status ? fmt::format(" (wait status {})", *status) : ""));
        }
        r.set_nspawn(*ref);
        r.image = spec.image;
        r.root = spec.root;
        r.netns = spec.network_namespace;
        r.started_at = static_cast<std::int64_t>(std::time(nullptr));
        child.release();  // it runs on its own now; stop() finds it by pid and start time
        return r;
    }

    std::optional<pid_t> leader(const ContainerRecord& r) override {
        if (!is_running(r)) return std::nullopt;
        if (auto l = find_leader(r.nspawn_pid)) return l->pid;
        return std::nullopt;
    }

    Change stop(const ContainerRecord& r, std::chrono::seconds grace) override {
        std::string cgroup = r.cgroup;
        if (cgroup.empty() && alive(r.nspawn()))
            cgroup = sys::cgroup_of(r.nspawn_pid);  // a stray: where we put it
        Change c = stop_processes(r, grace);
        if (cgroup.starts_with("/")) cgroup.erase(0, 1);
        if (cgroup.starts_with(fmt::format("{}/{}.", kCgroupParent, r.name))) sys::remove_cgroup(cgroup);
        return c;
    }

private:
    static std::string unique_suffix() {
        timespec ts{};
        ::clock_gettime(CLOCK_REALTIME, &ts);
        return fmt::format("{}{:09}.{}", ts.tv_sec, ts.tv_nsec, ::getpid());
    }

    Change stop_processes(const ContainerRecord& r, std::chrono::seconds grace) {
        ProcessRef nspawn = r.nspawn();
        ProcessRef lead = r.leader();
        // The container's PID 1, looked up again (as nspawn's child) while the one known is not
        // alive: a container stopped early in its start (an interrupted spawn's) gets its PID 1
        // only after stop began. Killing nspawn alone would leave that PID 1, its namespaces and
        // its veth behind.
        auto leader_alive = [&] {
            if (lead.pid > 0 && alive(lead)) return true;
            if (!alive(nspawn)) return false;
            auto l = find_leader(nspawn.pid);
            if (l) lead = *l;
            return l.has_value();
        };
        bool nspawn_up = alive(nspawn);
        bool leader_up = leader_alive();
        if (!nspawn_up && !leader_up) return Change::unchanged;

        const auto grace_ms = std::chrono::duration_cast<std::chrono::milliseconds>(grace);
        const bool boot = r.mode == "boot";
        // In boot mode the halt request is repeated (wait_asking_again) to the container's PID 1
        // itself. Never a second SIGTERM to nspawn: that one means "terminate now".
        auto ask_leader_again = [&] {
            if (boot && leader_alive()) send_signal(lead, SIGRTMIN + 3);
        };
        auto gone = [](const ProcessRef& p) {
            return [p](std::chrono::milliseconds slice) { return wait_gone(p, slice); };
        };
        if (nspawn_up) {
            // Boot mode: nspawn sends SIGRTMIN+3 to the container's systemd (a clean halt).
            // Script mode: --kill-signal=SIGTERM forwards SIGTERM to the startup script.
            send_signal(nspawn, SIGTERM);
            if (wait_asking_again(grace_ms, gone(nspawn), ask_leader_again) && !(lead.pid > 0 && alive(lead)))
                return Change::changed;
        } else {
            // nspawn was killed, its container lives on: ask its PID 1 directly.
            send_signal(lead, boot ? SIGRTMIN + 3 : SIGTERM);
            if (wait_asking_again(grace_ms, gone(lead), ask_leader_again)) return Change::changed;
        }
        // Not down in time: SIGKILL to the container's PID 1 ends its whole pid namespace;
        // nspawn then cleans up and exits.
        if (leader_alive()) {
            send_signal(lead, SIGKILL);
            wait_gone(lead, kAfterKill);
        }
        if (alive(nspawn) && !wait_gone(nspawn, kAfterKill)) {
            send_signal(nspawn, SIGKILL);
            if (!wait_gone(nspawn, kAfterKill))
                throw Error(fmt::format("stop {}: systemd-nspawn (pid {}) did not exit after SIGKILL",
                                        r.name, nspawn.pid));
        }
        return Change::changed;
    }
};

}  // namespace

std::unique_ptr<Launcher> make_detached_launcher() { return std::make_unique<DetachedLauncher>(); }

void remove_stale_cgroups() {
    // A minute: far longer than between making a cgroup and moving nspawn into it.
    if (auto n = sys::remove_unused_cgroups(std::string(kCgroupParent), std::chrono::seconds(60)))
        out::debug(fmt::format("removed {} cgroups of containers that ended without a stop", n));
}

}  // namespace aplspawn::fleet
