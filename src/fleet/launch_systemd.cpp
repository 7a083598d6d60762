// The launcher for a host whose PID 1 is systemd: every container is the transient service
// aplspawn-NAME.service in machine.slice, nspawn registered with machined (fleet/systemd.hpp).
// Its log is the unit's journal (journalctl -u UNIT, journalctl -M NAME for the guest's own).
#include "aplspawn/fleet/launch.hpp"
#include "aplspawn/fleet/systemd.hpp"

#include "aplspawn/error.hpp"
#include "aplspawn/output.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/programs.hpp"
#include "aplspawn/sys/process.hpp"

#include <fmt/format.h>

#include <csignal>
#include <ctime>

namespace aplspawn::fleet {
namespace {

using namespace std::chrono_literals;

constexpr std::chrono::seconds kStopTimeout{15};  // TimeoutStopSec of the unit
constexpr std::chrono::seconds kAfterKill{5};  // nspawn tears down after its PID 1 died
constexpr std::chrono::seconds kUnloaded{5};  // a stopped unit collected by systemd (normally at once)

std::string log_pointer(const std::string& name, const std::string& unit) {
    return fmt::format("aplspawn: {} runs as the systemd unit {}; its log: journalctl -u {} "
                       "(the guest's own journal: journalctl -M {})\n",
                       name, unit, unit, name);
}

class SystemdLauncher final : public Launcher {
public:
    std::string kind() const override { return "systemd"; }

    ContainerRecord start(const LaunchSpec& spec) override {
        return with_context(fmt::format("start container {}", spec.name), [&] {
            auto nspawn = sys::require_program("systemd-nspawn");
            // Checked here, not left to systemd: a missing namespace would otherwise become a unit
            // that failed at step NETWORK (exit status 225), nspawn never run.
            sys::UniqueFd netns = open_network_namespace(spec);
            systemd::ServiceSpec svc;
            svc.unit = systemd::unit_name(spec.name);
            svc.description = fmt::format("aplspawn container {}", spec.name);
            svc.command = systemd::nspawn_command(nspawn, nspawn_arguments(spec));
            svc.stop_timeout = kStopTimeout;
            // nspawn starts in the container's network namespace (see launch.hpp).
            svc.network_namespace = spec.network_namespace.string();
            svc.environment = nspawn_environment(spec);
            svc.limits = unit_properties(spec.resources);

            // One bus connection per call: spawn starts containers from several threads.
            systemd::Manager manager;
            pid_t pid = manager.start_service(svc);

            ContainerRecord r;
            r.name = spec.name;
            r.ip = spec.ip;
            r.group = spec.group;
            r.mode = spec.mode == config::StartMode::boot ? "boot" : "script";
            r.launcher = kind();
            r.unit = svc.unit;
            r.image = spec.image;
            r.root = spec.root;
            r.netns = spec.network_namespace;
            r.nspawn_pid = pid;  // gone already (no start time): not running
            if (auto p = process_ref(pid)) r.set_nspawn(*p);
            // nspawn registers before it reports READY: machined knows the leader by now.
            if (auto m = manager.machine(spec.name); m && m->unit == svc.unit && m->leader > 0) {
                if (auto l = process_ref(m->leader)) r.set_leader(*l);
            }
            r.started_at = static_cast<std::int64_t>(std::time(nullptr));
            // The output is in the journal; the state directory's log file says where.
            if (!spec.log_file.empty()) {
                sys::ensure_dir(spec.log_file.parent_path(), 0700);
                sys::write_file_atomic(spec.log_file, log_pointer(spec.name, svc.unit), 0640);
            }
            out::debug(log_pointer(spec.name, svc.unit));
            return r;
        });
    }

    std::optional<pid_t> leader(const ContainerRecord& record) override {
        systemd::Manager manager;
        auto m = manager.machine(record.name);
        // Only the machine of this record's unit: a same-named machine of someone else is not ours.
        if (!m || m->leader <= 0 || (!record.unit.empty() && m->unit != record.unit))
            return std::nullopt;
        return m->leader;
    }

    Change stop(const ContainerRecord& record, std::chrono::seconds grace) override {
        return with_context(fmt::format("stop container {}", record.name), [&] {
            std::string unit = record.unit.empty() ? systemd::unit_name(record.name) : record.unit;
            systemd::Manager manager;
            auto m = manager.machine(record.name);
            bool ours = m && m->unit == unit;
            if (!ours && !manager.is_up(unit)) return Change::unchanged;

            // Graceful: what `machinectl poweroff` does in boot mode (SIGRTMIN+4 to the guest's
            // systemd); SIGTERM to a startup script. Without a machine, stop the unit (nspawn
            // then halts the container itself).
            const bool boot = record.mode != "script";
            if (ours)
                manager.kill_machine(record.name, "leader", boot ? SIGRTMIN + 4 : SIGTERM);
            else
                manager.stop_unit(unit);
            // In boot mode the request is repeated (wait_asking_again).
            auto stopped = [&](std::chrono::milliseconds slice) { return manager.wait_stopped(unit, slice); };
            auto ask_again = [&] {
                if (!ours || !boot) return;
                try {
                    manager.kill_machine(record.name, "leader", SIGRTMIN + 4);
                } catch (const Error&) {
                    // gone meanwhile: the next wait sees it
                }
            };
            // Stopped is not yet collected: systemd prunes the unit's cgroups (the v1 memory one
            // of a unit with resources too) when it unloads it, a moment later. While stop's
            // network teardown was slow that moment happened to pass before stop returned; now
            // stop can end first (e2e systemd_host_resources saw the memory cgroup still there).
            auto collected = [&] {
                manager.wait_unloaded(unit, kUnloaded);
                return Change::changed;
            };
            if (wait_asking_again(grace, stopped, ask_again)) return collected();

            // Not down in time: SIGKILL to the container's PID 1 ends its whole pid namespace and
            // nspawn cleans up and exits, ending the unit. Should even that hang: `machinectl
            // terminate` and SIGKILL to everything in the unit.
            out::debug(fmt::format("Container {} did not stop within {} s: killing it", record.name,
                                   grace.count()));
            if (ours) {
                manager.kill_machine(record.name, "leader", SIGKILL);
                if (manager.wait_stopped(unit, kAfterKill)) return collected();
                manager.terminate_machine(record.name);
            }
            manager.kill_unit(unit, SIGKILL);
            if (manager.wait_stopped(unit, kAfterKill)) return collected();
            throw Error(fmt::format("unit {} is still {} after SIGKILL", unit,
                                    manager.active_state(unit).value_or("gone")));
        });
    }
};

}  // namespace

std::unique_ptr<Launcher> make_systemd_launcher() {
    if (!systemd::Manager::available()) return nullptr;
    return std::make_unique<SystemdLauncher>();
}

}  // namespace aplspawn::fleet
