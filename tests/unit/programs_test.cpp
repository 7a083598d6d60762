// sys/programs: the table of programs aplspawn runs, and the one line a missing or broken one
// gives (naming it and its Debian package), through require_program and through sys::run itself.
#include "aplspawn/sys/process.hpp"
#include "aplspawn/sys/programs.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

using namespace aplspawn;
namespace fs = std::filesystem;

namespace {

// PATH set to `dirs` for the scope, restored after.
class ScopedPath {
public:
    explicit ScopedPath(const std::string& dirs) {
        if (const char* p = std::getenv("PATH")) old_ = p;
        ::setenv("PATH", dirs.c_str(), 1);
    }
    ~ScopedPath() {
        if (old_) ::setenv("PATH", old_->c_str(), 1);
        else ::unsetenv("PATH");
    }
    ScopedPath(const ScopedPath&) = delete;
    ScopedPath& operator=(const ScopedPath&) = delete;

private:
    std::optional<std::string> old_;
};

struct TempDir {
    fs::path path = fs::temp_directory_path() / fmt::format("aplspawn-programs-{}", ::getpid());
    TempDir() { fs::create_directories(path); }
    ~TempDir() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE("programs: every program aplspawn runs has its Debian package", "[sys]") {
    const std::pair<const char*, const char*> want[] = {
        {"ssh", "openssh-client"},          {"ssh-keygen", "openssh-client"},
        {"systemd-nspawn", "systemd-container"}, {"visudo", "sudo"},
        {"mksquashfs", "squashfs-tools"},   {"sfdisk", "fdisk"},
        {"lxcfs", "lxcfs"}};
    for (const auto& [name, package] : want) {
        const sys::Program* p = sys::find_known_program(name);
        REQUIRE(p);
        CHECK(p->package == package);
        CHECK_FALSE(p->used_for.empty());
    }
    CHECK(sys::find_known_program("/usr/bin/ssh") == sys::find_known_program("ssh"));
    CHECK_FALSE(sys::find_known_program("cat"));
}

TEST_CASE("programs: a PATH without the program gives one line naming it and its package", "[sys]") {
    TempDir empty;
    ScopedPath path(empty.path.string());
    for (const auto& p : sys::programs()) {
        INFO(p.name);
        std::string name(p.name);
        CHECK_THROWS_WITH(sys::require_program(name),
                          Catch::Equals(fmt::format("{} is not installed: no {} in PATH (Debian "
                                                    "package {})",
                                                    name, name, p.package)));
        // sys::run and sys::spawn say the same when they are asked to run it.
        CHECK_THROWS_WITH(sys::run({name, "--version"}),
                          Catch::Contains(name + " is not installed") &&
                              Catch::Contains(std::string(p.package)));
        CHECK_THROWS_WITH(sys::spawn({name}), Catch::Contains(name + " is not installed") &&
                                                  Catch::Contains(std::string(p.package)));
    }
    // A program not in the table: named, no package guessed.
    CHECK_THROWS_WITH(sys::run({"no-such-tool"}),
                      Catch::Equals("no-such-tool is not installed: no no-such-tool in PATH"));
}

TEST_CASE("programs: a program that is there but cannot run names itself and its package", "[sys]") {
    TempDir dir;
    auto ssh = dir.path / "ssh";
    {
        std::ofstream f(ssh);
        f << "\x7f" "not an ELF file and no #!\n";
    }
    fs::permissions(ssh, fs::perms::owner_all);
    ScopedPath path(dir.path.string());
    CHECK(sys::require_program("ssh") == ssh);  // found: whether it runs shows when it is run
    CHECK_THROWS_WITH(sys::run({"ssh", "-V"}),
                      Catch::StartsWith("ssh (" + ssh.string() + ") cannot run: Exec format error") &&
                          Catch::EndsWith("(reinstall the Debian package openssh-client)"));
    CHECK_THROWS_WITH(sys::spawn({"ssh", "-V"}),
                      Catch::StartsWith("ssh (" + ssh.string() + ") cannot run: Exec format error"));
    // Not executable at all: not found as a program.
    fs::permissions(ssh, fs::perms::owner_read | fs::perms::owner_write);
    CHECK_THROWS_WITH(sys::run({"ssh"}), Catch::Contains("ssh is not installed"));
}
