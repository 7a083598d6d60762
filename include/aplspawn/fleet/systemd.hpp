// Containers as units on a host whose PID 1 is systemd (docs/systemd-host.md): each container
// is a transient service aplspawn-NAME.service in machine.slice (systemd1's StartTransientUnit
// over sd-bus) running systemd-nspawn --keep-unit, which registers the machine with machined
// itself, so machinectl, journalctl -M/-u, systemctl and resource limits work. Machined answers
// "who is the leader", and stops machines the way machinectl does.
#pragma once

#include "aplspawn/fleet/resources.hpp"
#include "aplspawn/sys/sd_bus.hpp"

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aplspawn::fleet::systemd {

namespace fs = std::filesystem;

// "aplspawn-NAME.service": the unit a container runs in (machine names are valid unit names).
std::string unit_name(std::string_view machine);

// The ExecStart of a container's unit: nspawn, then --keep-unit and --register=yes (nspawn
// registers the machine with machined for the unit it runs in), then `arguments` (the shared
// fleet::nspawn_arguments) without any --register=no of the detached launcher.
std::vector<std::string> nspawn_command(const fs::path& nspawn,
                                        const std::vector<std::string>& arguments);

struct ServiceSpec {
    std::string unit;  // "aplspawn-NAME.service"
    std::string description;
    std::vector<std::string> command;  // ExecStart; command[0] is an absolute path
    std::string slice = "machine.slice";
    // NetworkNamespacePath=: systemd starts the command in that network namespace ("": its own).
    std::string network_namespace;
    std::vector<std::string> environment;  // Environment= ("KEY=VALUE")
    // Start job bound (Type=notify: nspawn reports READY once the payload runs) and the time
    // systemd gives the unit to stop before SIGKILL.
    std::chrono::seconds start_timeout{90};
    std::chrono::seconds stop_timeout{15};
    std::vector<UnitProperty> limits;  // MemoryMax=, TasksMax=, AllowedCPUs= (fleet/resources.hpp)
};

// A machine as machined knows it.
struct Machine {
    pid_t leader = 0;  // the container's PID 1 as seen from the host
    std::string unit;  // the unit it runs in
};

// One connection to systemd (org.freedesktop.systemd1) and machined
// (org.freedesktop.machine1) on the system bus. Not thread-safe: one per thread.
class Manager {
public:
    Manager();  // throws Error when there is no system bus

    // Whether this host runs systemd as PID 1 (/run/systemd/system exists) and machined answers
    // on the system bus (it is bus-activated). Never throws.
    static bool available();
    // Whether systemd is this host's init (/run/systemd/system exists, as sd_booted() checks).
    static bool is_init();

    // Starts the transient service (Type=notify, KillMode=mixed, Delegate=yes,
    // CollectMode=inactive-or-failed: a stopped or failed unit is unloaded, its journal stays)
    // and waits for its start job. Returns the MainPID. A failed leftover unit of the same name
    // is reset first; an active one is an Error. A failed start throws an Error carrying the
    // tail of the unit's journal.
    pid_t start_service(const ServiceSpec& spec);

    // The unit's ActiveState ("active", "activating", "failed", ...); nullopt: not loaded.
    std::optional<std::string> active_state(const std::string& unit);
    // Loaded and not inactive/failed.
    bool is_up(const std::string& unit);
    // MainPID of a loaded service (0 when it has none).
    pid_t main_pid(const std::string& unit);
    // Polls until the unit is unloaded, inactive or failed; false when timeout passed first.
    bool wait_stopped(const std::string& unit, std::chrono::milliseconds timeout);
    // Polls until the unit is unloaded (systemd collected it, its cgroups pruned in every
    // hierarchy); false when timeout passed first.
    bool wait_unloaded(const std::string& unit, std::chrono::milliseconds timeout);
    void stop_unit(const std::string& unit);  // StopUnit(unit, "replace"), not waited for
    void kill_unit(const std::string& unit, int signal);  // KillUnit(unit, "all", signal)
    void reset_failed(const std::string& unit);

    // Unit files (`aplspawn enable` / `disable`): daemon-reload, and enabling or disabling an
    // installed unit file by name (its [Install] section: the .wants symlinks). enable/disable
    // return true when they changed something.
    void reload();
    bool enable_unit_file(const std::string& name);
    bool disable_unit_file(const std::string& name);
    // "enabled", "disabled", "static", ...; nullopt: systemd knows no such unit file.
    std::optional<std::string> unit_file_state(const std::string& name);

    // nullopt when machined does not know the machine.
    std::optional<Machine> machine(const std::string& name);
    // KillMachine(name, who, signal): "leader" + SIGRTMIN+4 is `machinectl poweroff`.
    void kill_machine(const std::string& name, const std::string& who, int signal);
    void terminate_machine(const std::string& name);  // `machinectl terminate`

private:
    sys::Bus bus_;
};

// The last `lines` lines of a unit's journal (what nspawn and the container's console printed,
// and what systemd logged about the unit), read through sd-journal; "" when there is none.
std::string journal_tail(const std::string& unit, int lines);

}  // namespace aplspawn::fleet::systemd
