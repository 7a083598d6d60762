#include "aplspawn/sys/process.hpp"

#include "aplspawn/error.hpp"
#include "aplspawn/sys/fd.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/programs.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstring>
#include <map>

extern char** environ;

namespace aplspawn::sys {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Argument and environment arrays built before fork: the child only calls async-signal-safe
// functions.
struct ExecImage {
    std::string path;
    std::vector<std::string> args;
    std::vector<std::string> envs;
    std::vector<char*> argv;
    std::vector<char*> envp;

    ExecImage(const std::vector<std::string>& a, const std::vector<std::string>& extra_env) {
        if (a.empty()) throw Error("exec: empty argument vector");
        auto found = find_program(a[0]);
        if (!found) throw program_error(a[0], {}, ENOENT);
        path = found->string();
        args = a;
        std::map<std::string, std::string> env;
        for (char** e = environ; e && *e; ++e) {
            std::string_view kv(*e);
            env[std::string(kv.substr(0, kv.find('=')))] = *e;
        }
        for (const auto& kv : extra_env) env[kv.substr(0, kv.find('='))] = kv;
        for (auto& [k, v] : env) envs.push_back(v);
        for (auto& s : args) argv.push_back(s.data());
        argv.push_back(nullptr);
        for (auto& s : envs) envp.push_back(s.data());
        envp.push_back(nullptr);
    }
};

void make_pipe(UniqueFd& r, UniqueFd& w) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) < 0) throw_errno("pipe2");
    r.reset(fds[0]);
    w.reset(fds[1]);
}

// What the child reports through the CLOEXEC pipe when it cannot exec: the stage and errno.
constexpr int kSetupFailed = 1;  // entering a network namespace, moving into cgroups, redirecting stdio
constexpr int kExecFailed = 2;   // execve itself: the program cannot run

[[noreturn]] void child_fail(int err_fd, int stage) {
    int report[2] = {stage, errno};
    ssize_t ignored = ::write(err_fd, report, sizeof report);
    (void)ignored;
    ::_exit(127);
}

// In the child after fork: every signal at its default disposition and an empty mask (as run()'s
// posix_spawn does), then exec; on failure report errno through the CLOEXEC pipe.
[[noreturn]] void child_exec(const ExecImage& img, int err_fd) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);  // EINVAL for KILL, STOP
    ::execve(img.path.c_str(), img.argv.data(), img.envp.data());
    child_fail(err_fd, kExecFailed);
}

// posix_spawn's attributes and file actions, freed on every path. start() throws
// "exec PROG: REASON" when the program cannot be started (glibc reports exec's errno).
class Spawn {
public:
    Spawn() {
        if (int e = ::posix_spawnattr_init(&attr_)) throw Error::from_errno("posix_spawnattr_init", e);
        if (int e = ::posix_spawn_file_actions_init(&actions_)) {
            ::posix_spawnattr_destroy(&attr_);
            throw Error::from_errno("posix_spawn_file_actions_init", e);
        }
    }
    ~Spawn() {
        ::posix_spawn_file_actions_destroy(&actions_);
        ::posix_spawnattr_destroy(&attr_);
    }
    Spawn(const Spawn&) = delete;
    Spawn& operator=(const Spawn&) = delete;

    // Every signal at its default disposition (also one ignored by whoever started us), and an
    // empty mask. (sigfillset leaves out glibc's internal signals.)
    void default_signals() {
        sigset_t none, defaults;
        sigemptyset(&none);
        sigfillset(&defaults);
        check(::posix_spawnattr_setsigmask(&attr_, &none), "setsigmask");
        check(::posix_spawnattr_setsigdefault(&attr_, &defaults), "setsigdefault");
        flags_ |= POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    }
    void set_flags(short f) { flags_ |= f; }
    // A dup2 onto the same number clears close-on-exec (glibc), so a pipe that landed on 0-2
    // still reaches the child.
    void dup2(int from, int to) { check(::posix_spawn_file_actions_adddup2(&actions_, from, to), "adddup2"); }
    void open(int fd, const char* path, int flags) {
        check(::posix_spawn_file_actions_addopen(&actions_, fd, path, flags, 0), "addopen");
    }
    void chdir(const std::string& dir) {
        check(::posix_spawn_file_actions_addchdir_np(&actions_, dir.c_str()), "addchdir");
    }
    pid_t start(const ExecImage& img) {
        check(::posix_spawnattr_setflags(&attr_, flags_), "setflags");
        pid_t pid = -1;
        if (int e = ::posix_spawn(&pid, img.path.c_str(), &actions_, &attr_, img.argv.data(), img.envp.data()))
            throw program_error(img.args[0], img.path, e);
        return pid;
    }

private:
    static void check(int e, const char* what) {
        if (e) throw Error::from_errno(fmt::format("posix_spawn {}", what), e);
    }
    posix_spawnattr_t attr_;
    posix_spawn_file_actions_t actions_;
    short flags_ = 0;
};

// Reads the exec-error pipe: {0, 0} when exec succeeded (pipe closed by exec), else the child's
// stage and errno.
std::pair<int, int> exec_error(UniqueFd& err_r) {
    int report[2] = {0, 0};
    ssize_t n;
    do n = ::read(err_r.get(), report, sizeof report);
    while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(sizeof report)) return {0, 0};
    return {report[0], report[1]};
}

void set_nonblock(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

void fill_status(RunResult& r, int status) {
    if (WIFEXITED(status)) {
        r.exit_code = WEXITSTATUS(status);
        r.signal = 0;
    } else if (WIFSIGNALED(status)) {
        r.signal = WTERMSIG(status);
    }
}

}  // namespace

const std::string& boot_id() {
    static const std::string id = [] {
        auto text = read_file_if_exists("/proc/sys/kernel/random/boot_id");
        std::string s = text.value_or("");
        while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
        if (s.empty()) throw Error("read /proc/sys/kernel/random/boot_id: empty or missing");
        return s;
    }();
    return id;
}

std::string RunResult::describe() const {
    if (timed_out) return "timed out";
    if (signal) return fmt::format("killed by signal {} ({})", signal, ::strsignal(signal));
    return fmt::format("exit status {}", exit_code);
}

std::optional<std::filesystem::path> find_program(const std::string& name) {
    if (name.find('/') != std::string::npos) {
        if (::access(name.c_str(), X_OK) == 0) return std::filesystem::path(name);
        return std::nullopt;
    }
    const char* path_env = std::getenv("PATH");
    std::string_view path = (path_env && *path_env) ? path_env : kDefaultPath;
    while (true) {
        size_t colon = path.find(':');
        std::filesystem::path dir(path.substr(0, colon));
        if (dir.empty()) dir = ".";
        std::string candidate = (dir / name).string();
        std::error_code ec;
        if (::access(candidate.c_str(), X_OK) == 0 &&
            std::filesystem::is_regular_file(candidate, ec))
            return std::filesystem::path(candidate);
        if (colon == std::string_view::npos) break;
        path.remove_prefix(colon + 1);
    }
    return std::nullopt;
}

RunResult run(const std::vector<std::string>& argv, const RunOptions& options) {
    ExecImage img(argv, options.env);
    UniqueFd in_r, in_w, out_r, out_w, err_r, err_w;
    make_pipe(out_r, out_w);
    make_pipe(err_r, err_w);
    const bool feed = !options.input.empty();
    if (feed) make_pipe(in_r, in_w);
    std::string cwd = options.cwd.string();

    // posix_spawn, not fork: glibc starts the child with CLONE_VM|CLONE_VFORK, so nothing of
    // this (often many-threaded) process's address space is copied or made copy-on-write.
    // status runs one ssh per container at once; fork's page-table copies and the write
    // faults after them were most of aplspawn's own CPU there.
    Spawn sp;
    sp.default_signals();
    sp.set_flags(POSIX_SPAWN_SETPGROUP);  // pgroup 0: its own group, a timeout kills all it started
    if (feed)
        sp.dup2(in_r.get(), 0);
    else
        sp.open(0, "/dev/null", O_RDONLY);
    sp.dup2(out_w.get(), 1);
    sp.dup2(err_w.get(), 2);
    if (!cwd.empty()) sp.chdir(cwd);
    pid_t pid = sp.start(img);
    Child guard(pid);  // killed and reaped if anything below throws
    out_w.reset();
    err_w.reset();
    in_r.reset();

    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd) throw_errno("pidfd_open");
    set_nonblock(out_r.get());
    set_nonblock(err_r.get());
    if (feed) set_nonblock(in_w.get());

    RunResult result;
    std::string_view pending = options.input;
    auto deadline = options.timeout ? std::optional(Clock::now() + *options.timeout) : std::nullopt;
    bool exited = false;
    char buf[65536];
    auto drain = [&](UniqueFd& fd, std::string& into) {
        while (fd) {
            ssize_t n = ::read(fd.get(), buf, sizeof buf);
            if (n > 0) {
                into.append(buf, static_cast<size_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return;
            fd.reset();  // EOF or error
        }
    };
    while (!exited || out_r || err_r) {
        // After the child exited, grandchildren may still hold the pipes open: take what is
        // there and stop rather than wait for them.
        if (exited) {
            drain(out_r, result.out);
            drain(err_r, result.err);
            break;
        }
        pollfd fds[4];
        int n = 0;
        fds[n++] = {pidfd.get(), POLLIN, 0};
        if (out_r) fds[n++] = {out_r.get(), POLLIN, 0};
        if (err_r) fds[n++] = {err_r.get(), POLLIN, 0};
        if (in_w) fds[n++] = {in_w.get(), POLLOUT, 0};
        int wait_ms = -1;
        if (deadline) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
            if (left.count() <= 0) {
                result.timed_out = true;
                ::kill(-pid, SIGKILL);
                ::kill(pid, SIGKILL);
                deadline.reset();
                continue;
            }
            wait_ms = static_cast<int>(left.count());
        }
        int rc = ::poll(fds, static_cast<nfds_t>(n), wait_ms);
        if (rc < 0) {
            if (errno == EINTR) continue;
            throw_errno("poll");
        }
        for (int i = 0; i < n; ++i) {
            if (!fds[i].revents) continue;
            if (fds[i].fd == pidfd.get()) {
                exited = true;
            } else if (out_r && fds[i].fd == out_r.get()) {
                drain(out_r, result.out);
            } else if (err_r && fds[i].fd == err_r.get()) {
                drain(err_r, result.err);
            } else if (in_w && fds[i].fd == in_w.get()) {
                ssize_t w = ::write(in_w.get(), pending.data(), pending.size());
                if (w > 0) pending.remove_prefix(static_cast<size_t>(w));
                if ((w < 0 && errno != EAGAIN && errno != EINTR) || pending.empty()) in_w.reset();
            }
        }
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    guard.release();
    fill_status(result, status);
    if (result.timed_out) ::kill(-pid, SIGKILL);  // stragglers of its group
    return result;
}

RunResult run_checked(const std::vector<std::string>& argv, const RunOptions& options) {
    RunResult r = run(argv, options);
    if (r.ok()) return r;
    std::string_view err = r.err.empty() ? std::string_view(r.out) : std::string_view(r.err);
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.remove_suffix(1);
    if (auto nl = err.rfind('\n'); nl != std::string_view::npos) err.remove_prefix(nl + 1);
    if (err.empty()) throw Error(fmt::format("{} failed ({})", argv[0], r.describe()));
    throw Error(fmt::format("{} failed ({}): {}", argv[0], r.describe(), err));
}

Child& Child::operator=(Child&& o) noexcept {
    if (this != &o) {
        Child old(std::exchange(pid_, o.release()));
    }
    return *this;
}

Child::~Child() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
}

pid_t Child::release() { return std::exchange(pid_, -1); }

std::optional<int> Child::poll() {
    if (pid_ <= 0) return std::nullopt;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        pid_ = -1;
        return status;
    }
    return std::nullopt;
}

std::optional<int> Child::wait_for(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return std::nullopt;
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
    auto deadline = Clock::now() + timeout;
    while (true) {
        if (auto st = poll()) return st;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) return std::nullopt;
        if (pidfd) {
            pollfd p{pidfd.get(), POLLIN, 0};
            ::poll(&p, 1, static_cast<int>(left.count()));
        } else {
            ::usleep(10000);
        }
    }
}

Child spawn(const std::vector<std::string>& argv, const SpawnOptions& options) {
    ExecImage img(argv, options.env);
    UniqueFd exec_r, exec_w;
    make_pipe(exec_r, exec_w);
    UniqueFd log;
    if (options.log_file.empty())
        log.reset(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    else
        log.reset(::open(options.log_file.c_str(),
                         O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640));
    if (!log) throw_errno(fmt::format("open log {}", options.log_file.string()));
    UniqueFd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!null_in) throw_errno("open /dev/null");

    pid_t pid = ::fork();
    if (pid < 0) throw_errno(fmt::format("fork for {}", argv[0]));
    if (pid == 0) {
        if (options.new_session) ::setsid();
        if (options.netns_fd >= 0 && ::setns(options.netns_fd, CLONE_NEWNET) < 0)
            child_fail(exec_w.get(), kSetupFailed);
        for (int fd : options.cgroup_procs)
            if (::write(fd, "0", 1) != 1) child_fail(exec_w.get(), kSetupFailed);
        if (::dup2(null_in.get(), 0) < 0 || ::dup2(log.get(), 1) < 0 || ::dup2(log.get(), 2) < 0)
            child_fail(exec_w.get(), kSetupFailed);
        child_exec(img, exec_w.get());
    }
    Child child(pid);
    exec_w.reset();
    if (auto [stage, err] = exec_error(exec_r); stage != 0) {
        child.wait_for(std::chrono::milliseconds(1000));
        if (stage == kExecFailed) throw program_error(argv[0], img.path, err);
        throw Error::from_errno(fmt::format("start {}: set up its network namespace, cgroups and output", argv[0]), err);
    }
    return child;
}

}  // namespace aplspawn::sys
