// Each container's overlayfs, and the refusal of an upper directory overlayfs cannot use.
#include "aplspawn/fleet/lower.hpp"
#include "aplspawn/fleet/overlay.hpp"
#include "aplspawn/sys/mount.hpp"
#include "integration/fleet_support.hpp"

using namespace aplspawn;
using namespace aplspawn::testing;

TEST_CASE("overlay: mounted once, writes land in the upper directory, unmounted", "[fleet][overlay]") {
    TempDir t;
    auto c = write_config(t);
    fleet::StateDir state(c);
    install_image(c, make_test_image(t / "img"));
    fleet::check_upper_filesystem(c, true);
    auto lower = fleet::ensure_lower(c, image_of(c), state, false).mount_point;
    auto d = fleet::container_dirs(c, *c.find("aplspawn10"));

    CHECK(fleet::ensure_overlay(lower, d) == Change::changed);
    CHECK(fleet::ensure_overlay(lower, d) == Change::unchanged);
    CHECK(fleet::overlay_state(sys::read_mountinfo(), lower, d) == fleet::OverlayState::correct);
    CHECK(fs::exists(d.merged / "sbin/test-init"));
    write_file(d.merged / "etc/hostname", "aplspawn10\n");
    CHECK(sys::read_file(d.upper / "etc/hostname") == "aplspawn10\n");
    CHECK(sys::read_file(lower / "etc/hostname").empty());

    CHECK(fleet::remove_overlay(d) == Change::changed);
    CHECK(fleet::remove_overlay(d) == Change::unchanged);
    // Data survives; mounted again, it is there.
    CHECK(fleet::ensure_overlay(lower, d) == Change::changed);
    CHECK(sys::read_file(d.merged / "etc/hostname") == "aplspawn10\n");

    SECTION("something else stacked on the merged directory is replaced") {
        sys::mount("tmpfs", d.merged, "tmpfs", 0, "");
        sys::mount("tmpfs", d.merged, "tmpfs", 0, "");
        CHECK(fleet::ensure_overlay(lower, d) == Change::changed);
        auto mounts = sys::read_mountinfo();
        CHECK(sys::count_mounts(mounts, d.merged) == 1);
        CHECK(fleet::overlay_state(mounts, lower, d) == fleet::OverlayState::correct);
    }
    fleet::remove_overlay(d);
}

TEST_CASE("an upper directory on overlayfs is refused, naming the key to change", "[fleet][overlay]") {
    TempDir t;
    // Like the root of a Docker container: the working directory lies on an overlayfs.
    for (auto d : {"ol", "ou", "ow", "docker"}) fs::create_directories(t / d);
    sys::mount("overlay", t / "docker", "overlay", 0,
               fmt::format("lowerdir={},upperdir={},workdir={}", (t / "ol").string(),
                           (t / "ou").string(), (t / "ow").string()));
    sys::MountGuard guard(t / "docker");
    std::string yaml = base_config(t.path(), 1);
    auto at = yaml.find("  workingDirectory: ");
    yaml.replace(at, yaml.find('\n', at) - at, "  workingDirectory: " + (t / "docker").string());
    write_file(t / "aplspawn.yaml", yaml);
    auto c = config::load(t / "aplspawn.yaml");
    CHECK_THROWS_WITH(fleet::check_upper_filesystem(c, true),
                      Catch::Contains("path.imageUpperPath") && Catch::Contains("overlayfs") &&
                          Catch::Contains("Docker"));
    // The tmpfs the tests run on is fine.
    auto ok = write_config(t);
    CHECK_NOTHROW(fleet::check_upper_filesystem(ok, true));
}
