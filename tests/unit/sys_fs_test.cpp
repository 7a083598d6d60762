// sys::write_file_atomic, ensure_dir, read_file, DirLock; fleet::StateDir records.
#include "aplspawn/fleet/state.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/lock.hpp"
#include "aplspawn/sys/process.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

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

TEST_CASE("container records round-trip, a dead or reused pid is not running", "[sys][fleet]") {
    Tmp t;
    fleet::StateDir state(t.path / "state");
    CHECK_FALSE(state.load("aplspawn10"));
    fleet::ContainerRecord r;
    r.name = "aplspawn10";
    r.ip = "10.10.12.10";
    r.mode = "boot";
    r.launcher = "detached";
    r.nspawn_pid = ::getpid();
    r.nspawn_start_time = *fleet::process_start_time(::getpid());
    state.save(r);
    auto back = state.load("aplspawn10");
    REQUIRE(back);
    CHECK(back->ip == "10.10.12.10");
    CHECK(back->nspawn_pid == ::getpid());
    CHECK(fleet::is_running(*back));
    back->nspawn_start_time += 1;  // same pid, different process: reused
    CHECK_FALSE(fleet::is_running(*back));
    back->nspawn_pid = 0;
    CHECK_FALSE(fleet::is_running(*back));
    state.remove("aplspawn10");
    CHECK_FALSE(state.load("aplspawn10"));
    CHECK_NOTHROW(state.remove("aplspawn10"));
    sys::write_file_atomic(state.record_path("broken"), "{not json");
    CHECK_THROWS_WITH(state.load("broken"), Catch::Contains("unreadable record"));
}
