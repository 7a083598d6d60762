// sys::run: argv exec, exit codes, exec errors, timeouts, stdin.
#include "aplspawn/sys/process.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace aplspawn;

TEST_CASE("sys::run reports exec failures and exit codes", "[sys]") {
    CHECK_THROWS_WITH(sys::run({"/nonexistent/program"}),
                      Catch::Contains("/nonexistent/program is not an executable file"));
    auto r = sys::run({"sh", "-c", "echo out; echo err >&2; exit 3"});
    CHECK(r.exit_code == 3);
    CHECK(r.out == "out\n");
    CHECK(r.err == "err\n");
    sys::RunOptions o;
    o.timeout = std::chrono::milliseconds(200);
    auto slow = sys::run({"sleep", "10"}, o);
    CHECK(slow.timed_out);
    CHECK_FALSE(slow.ok());
    o = {};
    o.input = "hello";
    CHECK(sys::run({"cat"}, o).out == "hello");
}

TEST_CASE("sys::run names the program when exec itself fails", "[sys]") {
    auto dir = std::filesystem::temp_directory_path() / fmt::format("aplspawn-exec-{}", ::getpid());
    std::filesystem::create_directories(dir);
    auto bad = dir / "not-a-program";
    {
        std::ofstream f(bad);
        f << "\x7f" "garbage, no ELF and no #!\n";
    }
    std::filesystem::permissions(bad, std::filesystem::perms::owner_all);
    CHECK_THROWS_WITH(sys::run({bad.string()}),
                      Catch::Contains(bad.string() + ") cannot run") && Catch::Contains("format"));
    std::filesystem::remove_all(dir);
}

// The value of a "Key:\tvalue" line of /proc/PID/status text.
static std::string status_field(const std::string& text, const std::string& key) {
    auto at = text.find("\n" + key + ":");
    if (at == std::string::npos) return "";
    auto from = text.find_first_not_of(" \t", at + key.size() + 2);
    return text.substr(from, text.find('\n', from) - from);
}

TEST_CASE("sys::run starts the child clean: default signals, empty mask, own process group, the cwd", "[sys]") {
    // The parent ignores SIGPIPE (as aplspawn's main does) and SIGUSR2 and blocks SIGUSR1: the
    // child must inherit none of that.
    auto old = ::signal(SIGPIPE, SIG_IGN);
    auto old2 = ::signal(SIGUSR2, SIG_IGN);
    sigset_t usr1, old_mask;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    ::pthread_sigmask(SIG_BLOCK, &usr1, &old_mask);
    sys::RunOptions o;
    o.cwd = "/proc";
    auto st = sys::run({"cat", "/proc/self/status", "/proc/self/stat"}, o);
    auto cwd = sys::run({"readlink", "/proc/self/cwd"}, o);
    ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    ::signal(SIGPIPE, old);
    ::signal(SIGUSR2, old2);
    REQUIRE(st.ok());
    REQUIRE(cwd.ok());
    CHECK(cwd.out == "/proc\n");
    // Signals 1-31 (32 and up include glibc's own, which it keeps as they are).
    CHECK((std::stoull(status_field(st.out, "SigIgn"), nullptr, 16) & 0x7fffffffULL) == 0);
    CHECK(std::stoull(status_field(st.out, "SigBlk"), nullptr, 16) == 0);
    // /proc/self/stat: "PID (cat) S PPID PGRP ..."
    auto stat = st.out.substr(st.out.rfind('\n', st.out.size() - 2) + 1);
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string state;
    long ppid = 0, pgrp = -1;
    fields >> state >> ppid >> pgrp;
    CHECK(ppid == ::getpid());
    CHECK(pgrp == std::stol(status_field(st.out, "Pid")));  // a timeout kills its group, never ours
    CHECK(pgrp != ::getpgrp());
}
