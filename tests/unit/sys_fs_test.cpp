// sys::write_file_atomic, ensure_dir, ensure_dir_restricted, no-space errors, read_file, DirLock;
// fleet::StateDir records.
#include "aplspawn/fleet/state.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/lock.hpp"
#include "aplspawn/sys/process.hpp"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

using namespace aplspawn;
namespace fs = std::filesystem;

namespace {
struct Tmp {
    fs::path path;
    Tmp() {
        std::string t = (fs::temp_directory_path() / "aplspawn-unit.XXXXXX").string();
        REQUIRE(::mkdtemp(t.data()));
        path = t;
    }
    ~Tmp() { fs::remove_all(path); }
};
}  // namespace

TEST_CASE("write_file_atomic replaces content and mode, never follows a symlink", "[sys]") {
    Tmp t;
    auto f = t.path / "file";
    sys::write_file_atomic(f, "one", 0600);
    CHECK(sys::read_file(f) == "one");
    struct stat st;
    REQUIRE(::stat(f.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    sys::write_file_atomic(f, "two", 0644);
    CHECK(sys::read_file(f) == "two");
    // A symlink at the target is replaced by the file, its target untouched.
    auto victim = t.path / "victim";
    sys::write_file_atomic(victim, "keep", 0644);
    auto link = t.path / "link";
    fs::create_symlink(victim, link);
    sys::write_file_atomic(link, "new", 0644);
    CHECK(sys::read_file(victim) == "keep");
    CHECK_FALSE(fs::is_symlink(link));
    CHECK(sys::read_file(link) == "new");
    // No temp files left behind.
    int entries = 0;
    for (auto& e : fs::directory_iterator(t.path)) entries += e.path().filename().string()[0] == '.';
    CHECK(entries == 0);
}

TEST_CASE("read_file_if_exists and ensure_dir", "[sys]") {
    Tmp t;
    CHECK_FALSE(sys::read_file_if_exists(t.path / "none"));
    CHECK_THROWS_WITH(sys::read_file(t.path / "none"), Catch::Contains("No such file"));
    CHECK(sys::ensure_dir(t.path / "a" / "b" / "c") == Change::changed);
    CHECK(fs::is_directory(t.path / "a" / "b" / "c"));
    CHECK(sys::ensure_dir(t.path / "a" / "b" / "c") == Change::unchanged);
    sys::write_file_atomic(t.path / "plain", "x");
    CHECK_THROWS_WITH(sys::ensure_dir(t.path / "plain"), Catch::Contains("Not a directory"));
    CHECK(sys::free_space(t.path / "does" / "not" / "exist") > 0);
}

namespace {
mode_t mode_of(const fs::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}
}  // namespace

TEST_CASE("ensure_dir: the mode is the directory's own, missing parents get 0755", "[sys]") {
    Tmp t;
    mode_t old = ::umask(022);
    CHECK(sys::ensure_dir(t.path / "p" / "q", 0700) == Change::changed);
    CHECK(mode_of(t.path / "p") == 0755);
    CHECK(mode_of(t.path / "p" / "q") == 0700);
    ::umask(old);
}

TEST_CASE("ensure_dir_restricted: created 0700, an open one restricted, its old mode returned", "[sys]") {
    Tmp t;
    mode_t old = ::umask(0);  // whatever the umask, the result is the wanted mode at most
    CHECK_FALSE(sys::ensure_dir_restricted(t.path / "new" / "dir"));
    CHECK(mode_of(t.path / "new" / "dir") == 0700);
    CHECK(mode_of(t.path / "new") == 0755);
    ::umask(old);
    fs::create_directory(t.path / "open");
    fs::permissions(t.path / "open", static_cast<fs::perms>(0755));
    CHECK(sys::ensure_dir_restricted(t.path / "open") == mode_t{0755});
    CHECK(mode_of(t.path / "open") == 0700);
    CHECK_FALSE(sys::ensure_dir_restricted(t.path / "open"));  // already so
    fs::permissions(t.path / "open", static_cast<fs::perms>(0750));
    CHECK(sys::ensure_dir_restricted(t.path / "open") == mode_t{0750});
    CHECK(mode_of(t.path / "open") == 0700);
    sys::write_file_atomic(t.path / "plain", "x");
    CHECK_THROWS_WITH(sys::ensure_dir_restricted(t.path / "plain"), Catch::Contains("Not a directory"));
}

TEST_CASE("a full filesystem: the error names the directory and says no space", "[sys]") {
    Tmp t;
    Error e = sys::no_space_error("write " + (t.path / "f").string(), t.path);
    CHECK(e.sys_errno() == ENOSPC);
    CHECK_THAT(e.message(), Catch::StartsWith("write " + (t.path / "f").string() +
                                              ": no space left on the filesystem of " + t.path.string()) &&
                                Catch::Contains("free space there and run the command again"));
    Error hinted = sys::with_no_space_hint(Error::from_errno("write /etc/hostname", ENOSPC), t.path);
    CHECK_THAT(hinted.message(), Catch::StartsWith("write /etc/hostname: No space left on device (no "
                                                   "space left on the filesystem of " + t.path.string()));
    Error other = sys::with_no_space_hint(Error::from_errno("write x", EACCES), t.path);
    CHECK(other.message() == "write x: Permission denied");
}

TEST_CASE("DirLock excludes a second holder and names the first", "[sys]") {
    Tmp t;
    {
        auto lock = sys::DirLock::acquire(t.path / "state", "spawn");
        // flock locks belong to the open file description: a second open in this process
        // conflicts just like another process would.
        CHECK_THROWS_WITH(sys::DirLock::acquire(t.path / "state", "stop"),
                          Catch::Contains("in use by aplspawn spawn (pid " +
                                          std::to_string(::getpid()) + ")"));
        // Another process is refused too.
        auto r = sys::run({"flock", "-n", (t.path / "state" / "lock").string(), "true"});
        CHECK(r.exit_code == 1);
    }
    CHECK_NOTHROW(sys::DirLock::acquire(t.path / "state", "stop"));
}

TEST_CASE("DirLock: a holder that is gone leaves the lock to the child it forked, which is waited for",
          "[sys]") {
    Tmp t;
    const auto lock = (t.path / "state" / "lock").string();
    { auto first = sys::DirLock::acquire(t.path / "state", "spawn"); }  // makes the directory
    // A pid that no longer exists: a child of ours, exited and reaped.
    auto dead = sys::run({"sh", "-c", "echo $$"});
    REQUIRE(dead.ok());
    const std::string gone_holder = "aplspawn spawn (pid " + dead.out.substr(0, dead.out.size() - 1) + ")";
    // What a killed spawn leaves: its line in the file, the lock held by its child a little
    // longer. Returns once the child holds the lock and the line is written.
    auto held_by = [&](const std::string& who, const char* seconds) {
        auto child = sys::spawn({"flock", "-n", lock, "sh", "-c",
                                 std::string("printf '%s\\n' '") + who + "' > " + lock + "; sleep " + seconds});
        auto ready = [&] {
            return sys::read_file_if_exists(lock) == who + "\n" &&
                   sys::run({"flock", "-n", lock, "true"}).exit_code == 1;
        };
        for (int i = 0; i < 200 && !ready(); ++i) ::usleep(10000);
        REQUIRE(ready());
        return child;
    };
    {
        auto child = held_by(gone_holder, "0.5");
        auto t0 = std::chrono::steady_clock::now();
        CHECK_NOTHROW(sys::DirLock::acquire(t.path / "state", "stop"));
        CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(200));
        child.wait_for(std::chrono::seconds(5));
    }
    {
        // A holder that lives (this process) is named at once, not waited for.
        auto child = held_by("aplspawn spawn (pid " + std::to_string(::getpid()) + ")", "3");
        auto t0 = std::chrono::steady_clock::now();
        CHECK_THROWS_WITH(sys::DirLock::acquire(t.path / "state", "stop"), Catch::Contains("is in use by aplspawn spawn"));
        CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
        ::kill(child.pid(), SIGTERM);
        child.wait_for(std::chrono::seconds(5));
    }
}

TEST_CASE("container records round-trip, a dead or reused pid is not running", "[sys][fleet]") {
    Tmp t;
    fleet::StateDir state(t.path / "state");
    CHECK_FALSE(state.load("aplspawn10"));
    fleet::ContainerRecord r;
    r.name = "aplspawn10";
    r.ip = "10.10.12.10";
    r.mode = "boot";
    r.launcher = "detached";
    r.set_nspawn(*fleet::process_ref(::getpid()));
    state.save(r);
    auto back = state.load("aplspawn10");
    REQUIRE(back);
    CHECK(back->ip == "10.10.12.10");
    CHECK(back->nspawn_pid == ::getpid());
    CHECK(fleet::is_running(*back));
    CHECK(back->boot_id == sys::boot_id());
    back->nspawn_start_time += 1;  // same pid, different process: reused
    CHECK_FALSE(fleet::is_running(*back));
    back->nspawn_start_time -= 1;
    back->boot_id = "00000000-0000-4000-8000-000000000000";  // same pid and start time, another boot
    CHECK_FALSE(fleet::is_running(*back));
    back->boot_id.clear();  // a record of an older aplspawn: no boot, no proof
    CHECK_FALSE(fleet::is_running(*back));
    back->boot_id = sys::boot_id();
    CHECK(fleet::is_running(*back));
    back->nspawn_pid = 0;
    CHECK_FALSE(fleet::is_running(*back));
    state.remove("aplspawn10");
    CHECK_FALSE(state.load("aplspawn10"));
    CHECK_NOTHROW(state.remove("aplspawn10"));
    sys::write_file_atomic(state.record_path("broken"), "{not json");
    CHECK_THROWS_WITH(state.load("broken"), Catch::Contains("unreadable record"));
}
