// External programs, always from argv vectors (never a shell string). The program is looked up
// in PATH first; an exec failure comes back as an Error ("exec ssh-keygen: No such file or
// directory"), not as a mysterious exit code 127. Children start with every signal at its default
// and an empty signal mask. run() uses posix_spawn (no copy of our address space: status starts
// one ssh per container at once); spawn() forks, as its child moves itself into cgroups first.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace aplspawn::sys {

struct RunOptions {
    std::vector<std::string> env;  // extra "KEY=VALUE" entries, added to (or replacing in) environ
    std::optional<std::chrono::milliseconds> timeout;  // killed (whole process group) after this
    std::string input;                                 // written to stdin; empty: /dev/null
    std::filesystem::path cwd;                         // empty: inherit
};

struct RunResult {
    int exit_code = -1;  // valid when signal == 0
    int signal = 0;      // the signal that ended it, 0 if it exited
    bool timed_out = false;
    std::string out;  // captured stdout
    std::string err;  // captured stderr
    bool ok() const { return signal == 0 && !timed_out && exit_code == 0; }
    // "exit status 3", "killed by signal 9", "timed out after 5 s" ...
    std::string describe() const;
};

// The kernel's boot id (/proc/sys/kernel/random/boot_id, a UUID new at every boot), read once.
// With a pid and a start time it names one process for good: pids and start times (clock ticks
// since boot) both repeat after a reboot. Throws Error when it cannot be read.
const std::string& boot_id();

// Runs argv to completion, capturing stdout and stderr. Throws Error only when it cannot be
// started at all; a non-zero exit is reported in the result.
RunResult run(const std::vector<std::string>& argv, const RunOptions& options = {});

// Like run(), but a non-zero exit throws Error "ARGV0 failed (exit status N): LAST STDERR LINE".
RunResult run_checked(const std::vector<std::string>& argv, const RunOptions& options = {});

// The absolute path of a program found in PATH (or the given path if it contains '/').
std::optional<std::filesystem::path> find_program(const std::string& name);

struct SpawnOptions {
    std::vector<std::string> env;
    std::filesystem::path log_file;  // stdout+stderr appended here; empty: /dev/null
    bool new_session = true;         // setsid(): not killed with our terminal's process group
    // cgroup.procs files (sys/cgroup.hpp) the child moves itself into before exec.
    std::vector<int> cgroup_procs;
    // A network namespace (an open nsfs file) the child enters before exec; -1: ours.
    int netns_fd = -1;
};

// A started child. Destruction kills (SIGKILL) and reaps it unless release()d: a launch that
// fails half-way leaves no stray processes.
class Child {
public:
    Child() = default;
    explicit Child(pid_t pid) : pid_(pid) {}
    Child(Child&& o) noexcept : pid_(o.release()) {}
    Child& operator=(Child&& o) noexcept;
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child();

    pid_t pid() const { return pid_; }
    pid_t release();
    // Waits up to timeout for it to exit; returns its wait status, or nullopt if still running.
    std::optional<int> wait_for(std::chrono::milliseconds timeout);
    // Non-blocking: exited (and reaped) already?
    std::optional<int> poll();

private:
    pid_t pid_ = -1;
};

// Starts argv detached: stdin /dev/null, stdout/stderr to the log file.
Child spawn(const std::vector<std::string>& argv, const SpawnOptions& options = {});

}  // namespace aplspawn::sys
