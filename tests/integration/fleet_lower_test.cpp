// The fleet's lower layer: attached and mounted once, reused, replaced by a newer image version
// only while no container uses it, released with its loop device.
#include "aplspawn/fleet/lower.hpp"
#include "aplspawn/sys/loop.hpp"
#include "aplspawn/sys/mount.hpp"
#include "integration/fleet_support.hpp"

#include <sys/mount.h>

using namespace aplspawn;
using namespace aplspawn::testing;

TEST_CASE("lower layer: mounted once, reused, released with its loop device", "[fleet][lower]") {
    TempDir t;
    auto c = write_config(t);
    fleet::StateDir state(c);
    install_image(c, make_test_image(t / "v1.img"));

    auto first = fleet::ensure_lower(c, image_of(c), state, false);
    CHECK(first.change == Change::changed);
    CHECK(first.loop_device.starts_with("/dev/loop"));
    CHECK(first.mount_point == fleet::lower_dir(c, image_of(c).name));
    CHECK(fs::exists(first.mount_point / "sbin/test-init"));
    auto status = fleet::inspect_lower(c, image_of(c).name);
    REQUIRE(status.is_image_mount());
    CHECK(status.loop->device == first.loop_device);
    CHECK(status.loop->read_only);
    CHECK(status.loop->autoclear);
    // The record says which file (resolved through the store's symlink) the layer came from.
    std::string record = sys::read_file(fleet::lower_record_path(state, image_of(c).name));
    CHECK_THAT(record, Catch::Contains((t / "v1.img").string()) && Catch::Contains("\"inode\""));

    auto again = fleet::ensure_lower(c, image_of(c), state, false);
    CHECK(again.change == Change::unchanged);
    CHECK(again.loop_device == first.loop_device);
    CHECK(sys::count_mounts(sys::read_mountinfo(), first.mount_point) == 1);

    SECTION("a newer version waits while containers use the old one, then replaces it") {
        install_image(c, make_test_image(t / "v2.img", "gpt-root", "ext4"));
        auto kept = fleet::ensure_lower(c, image_of(c), state, true);
        CHECK(kept.change == Change::unchanged);
        CHECK(kept.loop_device == first.loop_device);
        REQUIRE(kept.notes.size() == 1);
        CHECK_THAT(kept.notes[0], Catch::Contains("older version"));
        CHECK(fleet::plan_lower(c, image_of(c), true).describe().empty());
        CHECK_THAT(fleet::plan_lower(c, image_of(c), false).describe(), Catch::Contains("older version"));

        auto replaced = fleet::ensure_lower(c, image_of(c), state, false);
        CHECK(replaced.change == Change::changed);
        CHECK(fleet::inspect_lower(c, image_of(c).name).fstype == "ext4");
        CHECK(sys::count_mounts(sys::read_mountinfo(), first.mount_point) == 1);
        if (replaced.loop_device != first.loop_device)
            CHECK(eventually([&] { return !sys::loop_status(first.loop_device); }));
    }
    SECTION("release unmounts and frees the loop device; twice is already so") {
        CHECK(fleet::release_lower(c, image_of(c).name, state) == Change::changed);
        CHECK_FALSE(fleet::inspect_lower(c, image_of(c).name).mounted);
        CHECK_FALSE(fs::exists(fleet::lower_record_path(state, image_of(c).name)));
        CHECK(eventually([&] { return !sys::loop_status(first.loop_device); }));
        CHECK(fleet::release_lower(c, image_of(c).name, state) == Change::unchanged);
    }
}

TEST_CASE("lower layer: a missing image or a foreign mount is a clear error", "[fleet][lower]") {
    TempDir t;
    auto c = write_config(t);
    fleet::StateDir state(c);
    CHECK_THROWS_WITH(fleet::ensure_lower(c, image_of(c), state, false), Catch::Contains("run aplspawn getimage"));
    install_image(c, make_test_image(t / "v1.img"));
    fs::create_directories(fleet::lower_dir(c, image_of(c).name));
    sys::mount("tmpfs", fleet::lower_dir(c, image_of(c).name), "tmpfs", 0, "");
    CHECK_THROWS_WITH(fleet::ensure_lower(c, image_of(c), state, false),
                      Catch::Contains("tmpfs") && Catch::Contains("path.imageLowerLayer"));
    CHECK(fleet::release_lower(c, image_of(c).name, state) == Change::unchanged);  // not ours: left alone
    CHECK(fleet::inspect_lower(c, image_of(c).name).mounted);
}
