// sys::RootFs: every path resolved inside the root by the kernel (openat2 RESOLVE_IN_ROOT). The
// "host" targets the symlinks point at really exist (in a private /tmp of the test's mount
// namespace), so a resolver that followed them would write there.
#include "aplspawn/sys/rootfs.hpp"
#include "support/testing.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <thread>

using namespace aplspawn;
using namespace aplspawn::testing;

namespace {

// A private tmpfs at /tmp (the namespace's own; the machine's /tmp is not touched) and a root
// directory on a tmpfs without nodev, so device nodes behave as on a real disk.
struct Scene {
    TempDir t;
    fs::path root;
    Scene() {
        REQUIRE(::mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777") == 0);
        REQUIRE(::mount("tmpfs", t.path().c_str(), "tmpfs", 0, "mode=0755") == 0);
        root = t / "root";
        fs::create_directories(root / "etc");
        write_file(root / "etc/passwd", "root:x:0:0::/root:/bin/sh\n");
        write_file("/tmp/host-passwd", "HOST\n");
    }
    ~Scene() {
        ::umount2(t.path().c_str(), MNT_DETACH);
        ::umount2("/tmp", MNT_DETACH);
    }
};

mode_t mode_of(const fs::path& p) {
    struct stat st {};
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("rootfs: absolute and ../ symlinks resolve inside the root", "[rootfs][provision]") {
    Scene s;
    fs::create_symlink("/etc", s.root / "abs");
    fs::create_symlink("../../../../../etc", s.root / "climb");
    fs::create_symlink("/tmp/host-passwd", s.root / "etc/link");
    sys::RootFs r(s.root);
    CHECK(r.read_file("/abs/passwd") == "root:x:0:0::/root:/bin/sh\n");
    CHECK(r.read_file("climb/passwd") == "root:x:0:0::/root:/bin/sh\n");
    CHECK(r.read_file("/../../etc/passwd") == "root:x:0:0::/root:/bin/sh\n");
    // /tmp/host-passwd exists on the host but not in the root: nothing there.
    CHECK_FALSE(r.read_file("/etc/link"));
    CHECK_FALSE(r.status("/etc/link"));
    REQUIRE(r.symlink_status("/etc/link"));
    CHECK(S_ISLNK(r.symlink_status("/etc/link")->st_mode));
    CHECK(r.read_link("/etc/link") == "/tmp/host-passwd");
}

TEST_CASE("rootfs: a write replaces a symlink and never follows it", "[rootfs][provision]") {
    Scene s;
    fs::create_symlink("/tmp/host-passwd", s.root / "etc/hostname");
    sys::RootFs r(s.root);
    CHECK(r.write_file("/etc/hostname", "c1\n", {0644, {}}) == Change::changed);
    CHECK(sys::read_file("/tmp/host-passwd") == "HOST\n");
    CHECK_FALSE(fs::is_symlink(s.root / "etc/hostname"));
    CHECK(sys::read_file(s.root / "etc/hostname") == "c1\n");
    // No temp file is left next to it.
    int entries = 0;
    for (auto& e : fs::directory_iterator(s.root / "etc")) {
        CHECK(e.path().filename().string().find(".aplspawn-") == std::string::npos);
        ++entries;
    }
    CHECK(entries == 2);
}

TEST_CASE("rootfs: writing the same content, mode and owner changes nothing", "[rootfs][provision]") {
    Scene s;
    sys::RootFs r(s.root);
    REQUIRE(r.write_file("/etc/x", "one\n", {0640, {1000, 1000}}) == Change::changed);
    struct stat before {};
    REQUIRE(::stat((s.root / "etc/x").c_str(), &before) == 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(r.write_file("/etc/x", "one\n", {0640, {1000, 1000}}) == Change::unchanged);
    struct stat after {};
    REQUIRE(::stat((s.root / "etc/x").c_str(), &after) == 0);
    CHECK(after.st_ino == before.st_ino);
    CHECK(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
    // Any difference rewrites it.
    CHECK(r.write_file("/etc/x", "one\n", {0600, {1000, 1000}}) == Change::changed);
    CHECK(mode_of(s.root / "etc/x") == 0600);
    CHECK(r.write_file("/etc/x", "one\n", {0600, {0, 0}}) == Change::changed);
    struct stat owned {};
    REQUIRE(::stat((s.root / "etc/x").c_str(), &owned) == 0);
    CHECK(owned.st_uid == 0);
    CHECK(r.write_file("/etc/x", "two\n", {0600, {0, 0}}) == Change::changed);
    CHECK(sys::read_file(s.root / "etc/x") == "two\n");
    // A set-uid mode survives the chown that comes first.
    CHECK(r.write_file("/etc/suid", "x", {04755, {1000, 0}}) == Change::changed);
    CHECK(mode_of(s.root / "etc/suid") == 04755);
    CHECK_THROWS_WITH(r.write_file("/etc", "x"), Catch::Contains("write /etc: Is a directory"));
    CHECK_THROWS_WITH(r.write_file("/nodir/x", "x"), Catch::Contains("write /nodir/x: directory /nodir"));
}

TEST_CASE("rootfs: mkdir -p inside the root, with a clear error for a symlink leading out",
          "[rootfs][provision]") {
    Scene s;
    fs::create_directories("/tmp/host-home");
    fs::create_symlink("/tmp/host-home", s.root / "home");
    fs::create_symlink("../../../../tmp/host-home", s.root / "home2");
    write_file(s.root / "afile", "x");
    sys::RootFs r(s.root);

    CHECK(r.ensure_dir("/var/lib/x", {0700, {1000, 1001}}) == Change::changed);
    CHECK(mode_of(s.root / "var") == 0755);
    CHECK(mode_of(s.root / "var/lib") == 0755);
    CHECK(mode_of(s.root / "var/lib/x") == 0700);
    struct stat st {};
    REQUIRE(::stat((s.root / "var/lib/x").c_str(), &st) == 0);
    CHECK(st.st_uid == 1000);
    CHECK(st.st_gid == 1001);
    CHECK(r.ensure_dir("/var/lib/x", {0755, {}}) == Change::unchanged);

    CHECK_THROWS_WITH(r.ensure_dir("/home/test/.ssh"),
                      Catch::Contains("create directory /home/test/.ssh: /home is a symlink to "
                                      "/tmp/host-home, which does not lead to a directory inside "
                                      "the container root"));
    CHECK_THROWS_WITH(r.ensure_dir("/home2/test"), Catch::Contains("/home2 is a symlink to ../../../../tmp/host-home"));
    CHECK_THROWS_WITH(r.ensure_dir("/afile/sub"), Catch::Contains("/afile exists and is a regular file"));
    CHECK(fs::is_empty("/tmp/host-home"));

    // Once the link leads somewhere inside the root, it is followed there.
    fs::create_directories(s.root / "tmp/host-home");
    CHECK(r.ensure_dir("/home/test", {0700, {1000, 1000}}) == Change::changed);
    CHECK(fs::is_directory(s.root / "tmp/host-home/test"));
    CHECK(fs::is_empty("/tmp/host-home"));
}

TEST_CASE("rootfs: owner and mode are set through the fd, inside the root", "[rootfs][provision]") {
    Scene s;
    fs::create_directories("/tmp/host-dir");
    fs::permissions("/tmp/host-dir", fs::perms(0755));
    fs::create_directories(s.root / "tmp/host-dir");
    fs::create_symlink("/tmp/host-dir", s.root / "link");
    REQUIRE(::mkfifo((s.root / "fifo").c_str(), 0644) == 0);
    sys::RootFs r(s.root);
    CHECK(r.set_attrs("/link", {0700, {1234, 1234}}) == Change::changed);
    CHECK(r.set_attrs("/link", {0700, {1234, 1234}}) == Change::unchanged);
    struct stat in {}, host {};
    REQUIRE(::stat((s.root / "tmp/host-dir").c_str(), &in) == 0);
    REQUIRE(::stat("/tmp/host-dir", &host) == 0);
    CHECK(in.st_uid == 1234);
    CHECK((in.st_mode & 07777) == 0700);
    CHECK(host.st_uid == 0);
    CHECK((host.st_mode & 07777) == 0755);
    CHECK_THROWS_WITH(r.set_attrs("/fifo", {0600, {}}), Catch::Contains("it is a FIFO"));
    // A program given /proc/PID/fd/N of open_directory() writes into the root's directory.
    auto dir = r.open_directory("/link");
    write_file(fmt::format("/proc/{}/fd/{}/x", ::getpid(), dir.get()), "in\n");
    CHECK(sys::read_file(s.root / "tmp/host-dir/x") == "in\n");
    CHECK_FALSE(fs::exists("/tmp/host-dir/x"));
    CHECK_THROWS_WITH(r.open_directory("/fifo"), Catch::Contains("open /fifo"));
    CHECK_THROWS_WITH(r.set_attrs("/missing", {0600, {}}), Catch::Contains("No such file"));
}

TEST_CASE("rootfs: only regular files are read, only directories listed", "[rootfs][provision]") {
    Scene s;
    REQUIRE(::mkfifo((s.root / "etc/fifo").c_str(), 0644) == 0);
    // /dev/zero's numbers: reading it would never end.
    REQUIRE(::mknod((s.root / "etc/zero").c_str(), S_IFCHR | 0644, makedev(1, 5)) == 0);
    sys::RootFs r(s.root);
    auto t0 = std::chrono::steady_clock::now();
    CHECK_THROWS_WITH(r.read_file("/etc/fifo"), Catch::Contains("read /etc/fifo: it is a FIFO, not a regular file"));
    CHECK_THROWS_WITH(r.read_file("/etc/zero"),
                      Catch::Contains("read /etc/zero: it is a character device, not a regular file"));
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
    CHECK_FALSE(r.read_file("/etc/missing"));
    CHECK_THROWS_WITH(r.read_file("/etc"), Catch::Contains("it is a directory"));
    CHECK(r.list_dir("/etc") == std::vector<std::string>{"fifo", "passwd", "zero"});
    CHECK(r.list_dir("/nope").empty());
    CHECK_THROWS(r.list_dir("/etc/fifo"));
}

TEST_CASE("rootfs: symlinks are made and removed atomically, never directories", "[rootfs][provision]") {
    Scene s;
    sys::RootFs r(s.root);
    CHECK(r.symlink("/etc/m.service", "/dev/null") == Change::changed);
    CHECK(fs::read_symlink(s.root / "etc/m.service") == "/dev/null");
    CHECK(r.symlink("/etc/m.service", "/dev/null") == Change::unchanged);
    CHECK(r.symlink("/etc/m.service", "/other") == Change::changed);
    CHECK(r.remove("/etc/m.service") == Change::changed);
    CHECK(r.remove("/etc/m.service") == Change::unchanged);
    CHECK(r.remove("/nodir/x") == Change::unchanged);
    CHECK_THROWS_WITH(r.remove("/etc"), Catch::Contains("Is a directory"));
    CHECK(fs::is_directory(s.root / "etc"));
    // Directories: only an empty one is removed; a link to one is removed itself.
    fs::create_directories(s.root / "d/sub");
    fs::create_symlink("/d", s.root / "dlink");
    CHECK_THROWS_WITH(r.remove_empty_dir("/d"), Catch::Contains("remove directory /d: Directory not empty"));
    CHECK(r.remove_empty_dir("/dlink") == Change::changed);
    CHECK(fs::is_directory(s.root / "d/sub"));
    CHECK(r.remove_empty_dir("/d/sub") == Change::changed);
    CHECK(r.remove_empty_dir("/d/sub") == Change::unchanged);
    CHECK_FALSE(fs::exists(s.root / "d/sub"));
    CHECK_THROWS(sys::split_last("/etc/.."));
    CHECK(sys::split_last("/etc/ssh/x") == std::pair<std::string, std::string>{"/etc/ssh", "x"});
    CHECK(sys::split_last("/x") == std::pair<std::string, std::string>{"/", "x"});
}
