#include "aplspawn/fleet/processes.hpp"

#include "aplspawn/error.hpp"
#include "aplspawn/fleet/state.hpp"
#include "aplspawn/sys/dir.hpp"
#include "aplspawn/sys/fd.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/process.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace aplspawn::fleet {
namespace {

using Clock = std::chrono::steady_clock;

std::optional<std::string> read_proc(pid_t pid, const char* file) {
    try {
        return sys::read_file_if_exists(fmt::format("/proc/{}/{}", pid, file));
    } catch (const Error&) {
        return std::nullopt;  // ESRCH and friends: the process went away while we looked
    }
}

std::optional<pid_t> parse_pid(std::string_view s) {
    pid_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v <= 0) return std::nullopt;
    return v;
}

// /proc/PID/stat field 4.
std::optional<pid_t> parent_of(pid_t pid) {
    auto stat = read_proc(pid, "stat");
    if (!stat) return std::nullopt;
    auto close = stat->rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::string_view rest(*stat);
    rest.remove_prefix(close + 2);  // "S PPID ..."
    auto sp = rest.find(' ');
    if (sp == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(sp + 1);
    return parse_pid(rest.substr(0, rest.find(' ')));
}

// The innermost pid of `pid` (last number of the NSpid: line of /proc/PID/status).
std::optional<pid_t> innermost_pid(pid_t pid, int* levels) {
    auto status = read_proc(pid, "status");
    if (!status) return std::nullopt;
    auto at = status->find("\nNSpid:");
    if (at == std::string::npos) return std::nullopt;
    std::string_view line(*status);
    line.remove_prefix(at + 7);
    line = line.substr(0, line.find('\n'));
    std::optional<pid_t> last;
    int n = 0;
    while (!line.empty()) {
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
        auto end = line.find_first_of(" \t");
        auto tok = line.substr(0, end);
        if (!tok.empty()) {
            last = parse_pid(tok);
            ++n;
        }
        if (end == std::string_view::npos) break;
        line.remove_prefix(end);
    }
    if (levels) *levels = n;
    return last;
}

std::vector<pid_t> children_of(pid_t pid) {
    std::vector<pid_t> out;
    // /proc/PID/task/PID/children (CONFIG_PROC_CHILDREN) lists the main thread's children.
    if (auto text = read_proc(pid, fmt::format("task/{}/children", pid).c_str())) {
        std::string_view s(*text);
        while (!s.empty()) {
            auto sp = s.find(' ');
            if (auto v = parse_pid(s.substr(0, sp))) out.push_back(*v);
            if (sp == std::string_view::npos) break;
            s.remove_prefix(sp + 1);
        }
        return out;
    }
    // Without it: scan /proc for processes whose parent is pid.
    sys::Dir d = sys::Dir::open("/proc");
    if (!d) return out;
    while (dirent* e = d.next())
        if (auto v = parse_pid(e->d_name))
            if (parent_of(*v) == pid) out.push_back(*v);
    return out;
}

// /proc/PID/stat: the state letter (field 3) and the start time (field 22).
struct Stat {
    char state = 0;
    std::uint64_t start_time = 0;
};
std::optional<Stat> read_stat(pid_t pid) {
    if (pid <= 0) return std::nullopt;
    auto stat = read_proc(pid, "stat");
    if (!stat) return std::nullopt;
    // "pid (comm) state ppid ...": comm may contain spaces and ')', so count from the last ')'.
    auto close = stat->rfind(')');
    if (close == std::string::npos || close + 2 >= stat->size()) return std::nullopt;
    std::string_view rest(*stat);
    rest.remove_prefix(close + 2);
    Stat st;
    st.state = rest.front();
    // field 3 is state; starttime is field 22 -> the 20th field after ") ".
    for (int field = 3; field < 22; ++field) {
        auto sp = rest.find(' ');
        if (sp == std::string_view::npos) return std::nullopt;
        rest.remove_prefix(sp + 1);
    }
    auto v = rest.substr(0, rest.find(' '));
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), st.start_time);
    if (ec != std::errc() || p != v.data() + v.size()) return std::nullopt;
    return st;
}

// A zombie (exited, not yet reaped by its parent) is not running.
bool running_state(char state) { return state != 'Z' && state != 'X' && state != 'x'; }

sys::UniqueFd open_pidfd(const ProcessRef& p) {
    if (p.pid <= 0) return {};
    sys::UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, p.pid, 0)));
    if (!fd) return {};
    // The pidfd now pins this pid: if it is still the process we mean, it stays that process.
    if (!alive(p)) return {};
    return fd;
}

}  // namespace

std::optional<ProcessRef> process_ref(pid_t pid) {
    auto st = read_stat(pid);
    if (!st || !running_state(st->state)) return std::nullopt;
    return ProcessRef{pid, st->start_time, sys::boot_id()};
}

bool alive(const ProcessRef& p) {
    if (p.pid <= 0 || p.boot_id.empty() || p.boot_id != sys::boot_id()) return false;
    auto st = read_stat(p.pid);
    return st && st->start_time == p.start_time && running_state(st->state);
}

std::optional<ProcessRef> find_leader(pid_t nspawn_pid) {
    for (pid_t child : children_of(nspawn_pid)) {
        int levels = 0;
        auto inner = innermost_pid(child, &levels);
        if (inner && *inner == 1 && levels >= 2) return process_ref(child);
    }
    return std::nullopt;
}

std::optional<NspawnProcess> parse_nspawn_cmdline(std::string_view cmdline) {
    std::vector<std::string_view> args;
    while (!cmdline.empty()) {
        auto nul = cmdline.find('\0');
        args.push_back(cmdline.substr(0, nul));
        if (nul == std::string_view::npos) break;
        cmdline.remove_prefix(nul + 1);
    }
    if (args.empty()) return std::nullopt;
    std::string_view prog = args[0];
    if (auto slash = prog.rfind('/'); slash != std::string_view::npos) prog.remove_prefix(slash + 1);
    if (prog != "systemd-nspawn") return std::nullopt;
    NspawnProcess n;
    bool have_machine = false, have_dir = false;
    for (std::size_t i = 1; i < args.size(); ++i) {
        std::string_view a = args[i];
        if (a == "--") break;  // the container's command follows
        if (a.starts_with("--machine=")) {
            n.machine = std::string(a.substr(10));
            have_machine = true;
        } else if (a.starts_with("--directory=")) {
            n.directory = std::string(a.substr(12));
            have_dir = true;
        }
    }
    if (!have_machine || !have_dir) return std::nullopt;
    return n;
}

std::vector<NspawnProcess> list_nspawn_processes() {
    std::vector<NspawnProcess> out;
    sys::Dir d = sys::Dir::open("/proc");
    if (!d) throw_errno("list processes: open /proc");
    while (dirent* e = d.next()) {
        auto pid = parse_pid(e->d_name);
        if (!pid) continue;
        auto cmdline = read_proc(*pid, "cmdline");
        if (!cmdline) continue;
        auto n = parse_nspawn_cmdline(*cmdline);
        if (!n) continue;
        auto ref = process_ref(*pid);
        if (!ref) continue;
        n->process = *ref;
        out.push_back(std::move(*n));
    }
    // nspawn's own children carry its command line until they exec. The container's PID 1
    // (nspawn's inner child) lives in a pid namespace of its own, nested in ours: it is never a
    // container's nspawn, even in the moment its first parent (the outer child) has exited and
    // it is not yet reparented. The outer child is always a child of its nspawn.
    int own_levels = 0;
    innermost_pid(::getpid(), &own_levels);
    std::vector<pid_t> pids;
    for (const auto& n : out) pids.push_back(n.process.pid);
    std::erase_if(out, [&](const NspawnProcess& n) {
        int levels = 0;
        if (!innermost_pid(n.process.pid, &levels)) return true;  // gone meanwhile
        if (own_levels > 0 && levels > own_levels) return true;
        auto parent = parent_of(n.process.pid);
        return !parent || std::find(pids.begin(), pids.end(), *parent) != pids.end();
    });
    return out;
}

std::vector<ProcessRef> processes_using(const fs::path& dir) {
    std::vector<ProcessRef> out;
    const std::string d = dir.string();
    auto inside = [&](const std::string& p) {
        return p == d || (p.size() > d.size() && p.compare(0, d.size(), d) == 0 && p[d.size()] == '/');
    };
    sys::Dir proc = sys::Dir::open("/proc");
    if (!proc) return out;
    const pid_t self = ::getpid();
    while (dirent* e = proc.next()) {
        auto pid = parse_pid(e->d_name);
        if (!pid || *pid == self) continue;
        std::error_code ec;
        for (const char* link : {"root", "cwd"}) {
            auto target = fs::read_symlink(fmt::format("/proc/{}/{}", *pid, link), ec);
            if (ec || !inside(target.string())) continue;
            if (auto ref = process_ref(*pid)) out.push_back(*ref);
            break;
        }
    }
    return out;
}

bool send_signal(const ProcessRef& p, int sig) {
    sys::UniqueFd fd = open_pidfd(p);
    if (!fd) return false;
    if (::syscall(SYS_pidfd_send_signal, fd.get(), sig, nullptr, 0) < 0) {
        if (errno == ESRCH) return false;
        throw_errno(fmt::format("send signal {} to pid {}", sig, p.pid));
    }
    return true;
}

bool wait_gone(const ProcessRef& p, std::chrono::milliseconds timeout) {
    sys::UniqueFd fd = open_pidfd(p);
    auto reap = [&] {
        int status;
        ::waitpid(p.pid, &status, WNOHANG);  // ours (same process started it): no zombie left
    };
    if (!fd) {
        reap();
        return true;
    }
    auto deadline = Clock::now() + timeout;
    while (true) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        pollfd pfd{fd.get(), POLLIN, 0};
        int rc = ::poll(&pfd, 1, static_cast<int>(std::max<long long>(0, left.count())));
        if (rc > 0) {
            reap();
            return true;
        }
        if (rc < 0 && errno == EINTR) continue;
        if (!alive(p)) {
            reap();
            return true;
        }
        if (left.count() <= 0) return false;
    }
}

}  // namespace aplspawn::fleet
