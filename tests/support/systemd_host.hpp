// Integration tests on a host WITH systemd as PID 1, on a machine without it: a simulated host
// booted by tests/support/systemd-host (an overlay of this machine's own / on a tmpfs, booted
// with systemd-nspawn -b). Lives as long as the object; the test's namespaces take down whatever
// survives. `run_tests_inside` runs hidden test cases of this very binary inside the host, so
// product code meets a real systemd, machined and journald.
#pragma once

#include "aplspawn/sys/process.hpp"
#include "support/testing.hpp"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace aplspawn::testing {

inline fs::path systemd_host_script() {
    return fs::path(APLSPAWN_SOURCE_DIR) / "tests/support/systemd-host";
}

// This test binary and the build directory it lives in (build/tests/integration_tests).
inline fs::path self_binary() { return fs::read_symlink("/proc/self/exe"); }
inline fs::path build_dir() { return self_binary().parent_path().parent_path(); }

class SystemdHost {
public:
    // Boots the host; `extra` are more start options (--bind SRC[:DST], --bind-ro ...).
    explicit SystemdHost(std::vector<std::string> extra = {}) {
        std::vector<std::string> argv{systemd_host_script().string(), "start", "--bind-ro",
                                      build_dir().string()};
        argv.insert(argv.end(), extra.begin(), extra.end());
        sys::RunOptions o;
        o.timeout = std::chrono::seconds(150);
        started_ = sys::run(argv, o);
        if (!started_.ok())
            throw std::runtime_error("systemd-host start failed (" + started_.describe() +
                                     "): " + started_.err);
        leader_ = std::stoi(started_.out);
    }
    ~SystemdHost() {
        if (!stopped_) stop();
    }
    SystemdHost(const SystemdHost&) = delete;
    SystemdHost& operator=(const SystemdHost&) = delete;

    pid_t leader() const { return leader_; }
    // What start printed on stderr ("‣ [ OK ] Simulated systemd host ready in 1.9 s ...").
    const std::string& start_report() const { return started_.err; }

    // Runs argv inside the host (all its namespaces, its root). Never throws for an exit code.
    sys::RunResult exec(const std::vector<std::string>& argv,
                        std::chrono::seconds timeout = std::chrono::seconds(60),
                        std::vector<std::string> env = {}) const {
        std::vector<std::string> a{systemd_host_script().string(), "exec", "--"};
        a.insert(a.end(), argv.begin(), argv.end());
        sys::RunOptions o;
        o.timeout = timeout;
        o.env = std::move(env);
        return sys::run(a, o);
    }

    // Hidden test cases of this binary (tag filter) inside the host; exit 0 only when at least
    // one ran and all passed.
    sys::RunResult run_tests_inside(const std::string& filter,
                                    std::chrono::seconds timeout = std::chrono::seconds(240)) const {
        return exec({self_binary().string(), "--warn", "NoTests", filter}, timeout);
    }

    sys::RunResult stop() {
        stopped_ = true;
        sys::RunOptions o;
        o.timeout = std::chrono::seconds(60);
        return sys::run({systemd_host_script().string(), "stop"}, o);
    }

private:
    sys::RunResult started_;
    pid_t leader_ = 0;
    bool stopped_ = false;
};

}  // namespace aplspawn::testing
