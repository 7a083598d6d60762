// Root partition discovery on real images (every layout and filesystem of make-test-image), and
// the loop device + read-only mount of what it finds.
#include "aplspawn/image/disk.hpp"
#include "aplspawn/sys/fd.hpp"
#include "aplspawn/sys/loop.hpp"
#include "aplspawn/sys/mount.hpp"
#include "integration/fleet_support.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>

using namespace aplspawn;
using namespace aplspawn::testing;

namespace {

// Attaches the found range read-only and mounts it; returns /etc/os-release's ID line.
std::string mount_and_read(const fs::path& img, const image::RootPartition& p, const fs::path& mnt) {
    sys::UniqueFd fd(::open(img.c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    auto loop = sys::LoopDevice::attach(fd.get(), {p.offset, p.size, true, true}, img.string());
    auto st = sys::loop_status(loop.path());
    REQUIRE(st);
    CHECK(st->read_only);
    CHECK(st->autoclear);
    CHECK(st->offset == p.offset);
    CHECK(st->size_limit == p.size);
    struct stat is;
    REQUIRE(::fstat(fd.get(), &is) == 0);
    CHECK(st->backing_inode == is.st_ino);
    CHECK(st->backing_device == is.st_dev);
    fs::create_directories(mnt);
    sys::mount(loop.path(), mnt, p.mount_type(), MS_RDONLY, p.mount_data());
    sys::MountGuard guard(mnt);
    std::string text = sys::read_file(mnt / "etc/os-release");
    return text.find("ID=aplspawn-test") != std::string::npos ? "aplspawn-test" : text;
}

}  // namespace

TEST_CASE("root partition found on GPT layouts and bare filesystems, then mounted read-only",
          "[disk][fleet]") {
    TempDir t;
    struct Case {
        std::string layout, fstype;
        bool partitioned;
    };
    std::vector<Case> cases = {
        {"gpt-root", "squashfs", true}, {"gpt-label", "squashfs", true}, {"gpt-single", "squashfs", true},
        {"bare", "squashfs", false},    {"gpt-root", "ext4", true},      {"gpt-label", "ext4", true},
        {"bare", "ext4", false},        {"gpt-root", "erofs", true},     {"bare", "erofs", false},
        {"gpt-root", "btrfs", true},    {"gpt-single", "xfs", true},
    };
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.layout << " with " << c.fstype) {
            fs::path img = make_test_image(t / (c.layout + "-" + c.fstype + ".img"), c.layout, c.fstype);
            auto p = image::find_root_partition(img);
            CHECK(p.fstype == c.fstype);
            CHECK((p.number != 0) == c.partitioned);
            if (c.partitioned) {
                CHECK(p.offset % (1 << 20) == 0);
                CHECK(p.offset > 0);
            } else {
                CHECK(p.offset == 0);
                CHECK(p.size == fs::file_size(img));
            }
            if (c.layout == "gpt-root") CHECK_THAT(p.how, Catch::Contains("root-x86-64"));
            if (c.layout == "gpt-label") CHECK(p.number == 2);  // not the "data" decoy
            CHECK(mount_and_read(img, p, t / "mnt") == "aplspawn-test");
        }
    }
}

TEST_CASE("images without a usable root partition are refused, naming what is there", "[disk][fleet]") {
    TempDir t;
    auto none = make_test_image(t / "none.img", "gpt-none");
    CHECK_THROWS_WITH(image::find_root_partition(none),
                      Catch::Contains("find root partition in " + none.string()) &&
                          Catch::Contains("swap"));
    auto esp = make_test_image(t / "esp.img", "gpt-esp-only");
    CHECK_THROWS_WITH(image::find_root_partition(esp), Catch::Contains("esp"));
    write_file(t / "text.img", std::string(4096, 'x'));
    CHECK_THROWS_WITH(image::find_root_partition(t / "text.img"),
                      Catch::Contains("neither a partition table nor a filesystem"));
    write_file(t / "empty.img", "");
    CHECK_THROWS_WITH(image::find_root_partition(t / "empty.img"), Catch::Contains("empty"));
    CHECK_THROWS_WITH(image::find_root_partition(t / "missing.img"),
                      Catch::Contains("No such file"));
    // A filesystem aplspawn does not mount as a lower layer.
    sys::run_checked({"truncate", "-s", "2M", (t / "swap.img").string()});
    sys::run_checked({"mkswap", (t / "swap.img").string()});
    CHECK_THROWS_WITH(image::find_root_partition(t / "swap.img"),
                      Catch::Contains("holds swap") && Catch::Contains("squashfs, erofs, ext4"));
}

TEST_CASE("the Debian default image: DPS root partition with squashfs", "[disk][fleet][debian]") {
    auto img = default_image();
    auto p = image::find_root_partition(img);
    CHECK(p.fstype == "squashfs");
    CHECK_THAT(p.how, Catch::Contains("root-x86-64"));
}

TEST_CASE("a loop device is released when its mount goes (autoclear)", "[disk][fleet]") {
    TempDir t;
    fs::path img = make_test_image(t / "a.img");
    auto p = image::find_root_partition(img);
    std::string dev;
    {
        sys::UniqueFd fd(::open(img.c_str(), O_RDONLY | O_CLOEXEC));
        auto loop = sys::LoopDevice::attach(fd.get(), {p.offset, p.size, true, true}, img.string());
        dev = loop.path();
        fs::create_directories(t / "m");
        sys::mount(dev, t / "m", "squashfs", MS_RDONLY, "");
    }  // our fds closed: the mount holds the device
    REQUIRE(sys::loop_status(dev));
    CHECK(sys::unmount(t / "m") == Change::changed);
    CHECK(eventually([&] { return !sys::loop_status(dev); }));
    CHECK(sys::unmount(t / "m") == Change::unchanged);
}
