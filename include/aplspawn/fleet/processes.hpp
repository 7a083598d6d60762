// The fleet's processes as the host sees them, read from /proc: a container's leader (its PID 1),
// systemd-nspawn processes by machine name and directory (to find containers an interrupted run
// started but never recorded), and signals that cannot hit a recycled pid (pidfd, checked
// against the start time).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace aplspawn::fleet {

namespace fs = std::filesystem;

// A process identified by pid, start time (/proc/PID/stat field 22, clock ticks since boot) and
// the kernel's boot id (sys::boot_id): a pid alone may be reused by an unrelated process, and
// after a reboot pids and start times both repeat (a record written before the reboot may name
// a pid that some other process has now, even with the same start time).
struct ProcessRef {
    pid_t pid = 0;
    std::uint64_t start_time = 0;
    std::string boot_id;  // empty: unknown (a record of an older aplspawn), never alive
    friend bool operator==(const ProcessRef&, const ProcessRef&) = default;
};

// The live process with this pid now, if any (of this boot).
std::optional<ProcessRef> process_ref(pid_t pid);

// The container's PID 1 as the host sees it: the child of systemd-nspawn whose pid in its own
// (innermost) pid namespace is 1.
std::optional<ProcessRef> find_leader(pid_t nspawn_pid);

struct NspawnProcess {
    ProcessRef process;
    std::string machine;  // --machine=
    fs::path directory;   // --directory=
};

// Every systemd-nspawn process started with --machine= and --directory= (the way aplspawn starts
// them), from /proc/PID/cmdline.
std::vector<NspawnProcess> list_nspawn_processes();

// Parses a NUL-separated command line; nullopt unless it is systemd-nspawn with both options.
std::optional<NspawnProcess> parse_nspawn_cmdline(std::string_view cmdline);

// Processes whose root directory or working directory is `dir` or lies below it (a helper an
// interrupted run left working in a container root, e.g. chroot'ed), excluding ourselves.
std::vector<ProcessRef> processes_using(const fs::path& dir);

// Sends sig if the process is still the one referenced. false when it is gone (or was replaced).
bool send_signal(const ProcessRef& p, int sig);

// Waits up to timeout for the process to exit (reaping it if it is our child). true when gone.
bool wait_gone(const ProcessRef& p, std::chrono::milliseconds timeout);

// Whether the referenced process still runs: this boot, a live process (not a zombie) with this
// pid and start time. Every check whether a recorded process still runs goes through here.
bool alive(const ProcessRef& p);

}  // namespace aplspawn::fleet
