#include "aplspawn/fleet/lxcfs.hpp"

#include "aplspawn/fleet/processes.hpp"
#include "aplspawn/output.hpp"
#include "aplspawn/sys/cgroup.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/mount.hpp"
#include "aplspawn/sys/process.hpp"
#include "aplspawn/sys/programs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <thread>

namespace aplspawn::fleet {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr auto kMountWait = 10s;  // lxcfs mounts within milliseconds; a loaded host is slower
// Its cgroup in the systemd hierarchies: not the one of the spawn that started it.
constexpr const char* kCgroup = "aplspawn/lxcfs";

// Reads a little of a file; false on any error (ENOTCONN from a dead FUSE daemon, ...).
bool readable(const fs::path& file) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char buf[64];
    ssize_t n = ::read(fd, buf, sizeof buf);
    ::close(fd);
    return n > 0;
}

// The last non-empty line of a log, for a message.
std::string last_line(const fs::path& file) {
    std::optional<std::string> text;
    try {
        text = sys::read_file_if_exists(file);
    } catch (const Error&) {
        return {};
    }
    if (!text) return {};
    std::string_view t(*text);
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.remove_suffix(1);
    auto nl = t.rfind('\n');
    return std::string(nl == std::string_view::npos ? t : t.substr(nl + 1));
}

// `lxcfs -f -l --pidfile STATE/lxcfs.pid DIR` in its own session and cgroup; returns once its
// mount answers (bounded), recorded in STATE/lxcfs.json.
LxcfsView start_lxcfs(const fs::path& program, const StateDir& state, const fs::path& dir) {
    sys::ensure_dir(dir, 0755);
    sys::ensure_dir(state.dir(), 0700);
    std::vector<std::string> argv{program.string(), "-f", "-l",
                                  "--pidfile=" + (state.dir() / "lxcfs.pid").string(), dir.string()};
    sys::SpawnOptions o;
    o.new_session = true;
    o.log_file = state.dir() / "lxcfs.log";
    std::vector<sys::UniqueFd> cgroups = sys::create_cgroups(kCgroup);
    for (const auto& fd : cgroups) o.cgroup_procs.push_back(fd.get());
    sys::Child child = sys::spawn(argv, o);
    const auto deadline = std::chrono::steady_clock::now() + kMountWait;
    std::optional<LxcfsView> view;
    for (;;) {
        if (auto m = find_lxcfs(dir); m && m->answers) {
            view = m->view;
            break;
        }
        if (auto status = child.poll())
            throw Error(fmt::format("lxcfs exited at once (wait status {}): {} (log {})", *status,
                                    last_line(o.log_file), o.log_file.string()));
        if (std::chrono::steady_clock::now() >= deadline)
            throw Error(fmt::format("lxcfs did not mount {} within {} s (log {})", dir.string(),
                                    kMountWait.count(), o.log_file.string()));
        std::this_thread::sleep_for(20ms);
    }
    const auto ref = process_ref(child.pid());
    nlohmann::json j = {{"pid", child.pid()},
                        {"start_time", ref ? ref->start_time : 0},
                        {"boot_id", ref ? ref->boot_id : std::string()},
                        {"dir", dir.string()}};
    sys::write_file_atomic(state.dir() / "lxcfs.json", j.dump() + "\n", 0600);
    child.release();  // runs on its own, for every container that binds its files
    return *view;
}

}  // namespace

std::optional<LxcfsMount> find_lxcfs(const fs::path& dir) {
    std::vector<sys::MountInfo> mounts;
    try {
        mounts = sys::read_mountinfo();
    } catch (const Error&) {
        return std::nullopt;
    }
    bool mounted = false;
    for (const auto& m : mounts)
        if (m.mount_point == dir.string() && m.fstype == "fuse.lxcfs") mounted = true;
    if (!mounted) return std::nullopt;
    LxcfsMount out;
    out.view.dir = dir;
    out.answers = readable(dir / "proc/meminfo");
    if (out.answers)
        for (const auto& f : lxcfs_proc_files())
            if (::access((dir / f).c_str(), R_OK) == 0) out.view.files.push_back(f);
    return out;
}

void require_lxcfs(const fs::path& dir) {
    if (find_lxcfs(dir)) return;
    with_context("resources (groups.NAME.resources) need lxcfs", [] { sys::require_program("lxcfs"); });
}

LxcfsResult ensure_lxcfs(const StateDir& state, bool required, const fs::path& dir) {
    LxcfsResult r;
    if (auto m = find_lxcfs(dir)) {
        if (!m->answers) {
            std::string why = fmt::format("lxcfs at {} does not answer (its daemon is gone?): "
                                          "restart it only while no container uses it",
                                          dir.string());
            if (required) throw Error(why + ", then spawn again");
            r.note = why + ": containers see the host's memory, CPUs and uptime in /proc";
            return r;
        }
        r.view = m->view;
        return r;
    }
    fs::path program;
    try {
        program = sys::require_program("lxcfs");
    } catch (const Error& e) {
        if (required)
            throw Error(fmt::format("resources need lxcfs: {}", e.message()), Exit::failed);
        r.note = "lxcfs is not installed (Debian package lxcfs): containers see the host's "
                 "memory, CPUs and uptime in /proc";
        return r;
    }
    try {
        r.view = start_lxcfs(program, state, dir);
        r.change = Change::changed;
    } catch (const Error& e) {
        if (required) throw;
        // Groups without resources run as before: the host's /proc.
        r.note = fmt::format("lxcfs could not be started ({}): containers see the host's memory, "
                             "CPUs and uptime in /proc",
                             e.message());
    }
    return r;
}

std::optional<bool> container_lxcfs_answers(pid_t leader) {
    std::optional<sys::MountInfo> meminfo;
    try {
        meminfo = sys::find_mount(sys::read_mountinfo_of(leader), "/proc/meminfo");
    } catch (const Error&) {
        return std::nullopt;
    }
    if (!meminfo || meminfo->fstype != "fuse.lxcfs") return std::nullopt;
    return readable(fmt::format("/proc/{}/root/proc/meminfo", leader));
}

}  // namespace aplspawn::fleet
