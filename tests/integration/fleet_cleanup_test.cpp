// cleanup removes only what is ours: the fleet's entries of the configured directories, never
// following a symlink out, never crossing a mount point; refused while anything runs.
#include "aplspawn/fleet/cleanup.hpp"
#include "aplspawn/fleet/lower.hpp"
#include "aplspawn/fleet/network.hpp"
#include "aplspawn/fleet/observe.hpp"
#include "aplspawn/sys/mount.hpp"
#include "aplspawn/sys/remove_tree.hpp"
#include "integration/fleet_support.hpp"

#include <sys/mount.h>
#include <sys/stat.h>

using namespace aplspawn;
using namespace aplspawn::testing;

TEST_CASE("remove_tree_at: no symlink followed, no mount point crossed", "[fleet][cleanup]") {
    TempDir t;
    write_file(t / "outside/precious", "keep me");
    write_file(t / "victim/a/b/c/file", "x");
    fs::create_symlink(t / "outside", t / "victim/a/link-dir");
    fs::create_symlink(t / "outside/precious", t / "victim/link-file");
    fs::create_symlink("../../../../outside", t / "victim/a/b/rel");
    ::mkfifo((t / "victim/a/fifo").c_str(), 0600);

    SECTION("a mount below stops it, and nothing under the mount is touched") {
        fs::create_directories(t / "victim/a/mnt");
        sys::mount("tmpfs", t / "victim/a/mnt", "tmpfs", 0, "");
        write_file(t / "victim/a/mnt/inside", "on the mount");
        CHECK_THROWS_WITH(sys::remove_tree_at(t.path(), "victim"),
                          Catch::Contains("mount point") && Catch::Contains("victim/a/mnt"));
        CHECK(sys::read_file(t / "victim/a/mnt/inside") == "on the mount");
        sys::unmount(t / "victim/a/mnt");
        // Bind mounts of the same filesystem are caught too (same st_dev, another mount).
        fs::create_directories(t / "victim/a/bind");
        sys::mount((t / "outside").string(), t / "victim/a/bind", "", MS_BIND, "");
        CHECK_THROWS_WITH(sys::remove_tree_at(t.path(), "victim"), Catch::Contains("victim/a/bind"));
        CHECK(sys::read_file(t / "outside/precious") == "keep me");
        sys::unmount(t / "victim/a/bind");
    }
    CHECK(sys::remove_tree_at(t.path(), "victim") == Change::changed);
    CHECK_FALSE(fs::exists(fs::symlink_status(t / "victim")));
    CHECK(sys::read_file(t / "outside/precious") == "keep me");
    CHECK(sys::remove_tree_at(t.path(), "victim") == Change::unchanged);
    CHECK_THROWS(sys::remove_tree_at(t.path(), ".."));
    CHECK_THROWS(sys::remove_tree_at(t.path(), "a/b"));
}

TEST_CASE("cleanup plan: only the fleet's entries, refused while mounted", "[fleet][cleanup]") {
    TempDir t;
    auto c = write_config(t, 2);
    fleet::StateDir state(c);
    for (auto name : {"aplspawn10", "aplspawn11"}) {
        write_file(c.paths.upper / name / "etc/hostname", name);
        fs::create_directories(c.paths.work / name / "work");
        fs::create_directories(common_of(c).home_path / name);
    }
    // Not ours: another machine in homePath, and something beside the fleet in upper.
    write_file(common_of(c).home_path / "othermachine/etc/os-release", "ID=debian\n");
    write_file(c.paths.upper / "notes.txt", "mine\n");
    write_file(state.containers_dir() / "aplspawn12.json", R"({"name": "aplspawn12"})");
    write_file(c.paths.upper / "aplspawn12/data", "from a bigger fleet");
    write_file(state.known_hosts(), "10.77.0.10 ssh-ed25519 AAAA\n");
    write_file(state.net_state(), "{}\n");
    write_file(c.paths.local_store / "debian-bookworm-latest.img", "img");

    auto view = fleet::observe(c, state);
    REQUIRE(view.containers.size() == 3);  // the recorded aplspawn12 too
    fs::create_directories(fleet::lower_dir(c, image_of(c).name));
    sys::mount("tmpfs", common_of(c).home_path / "aplspawn10", "tmpfs", 0, "");
    CHECK_THROWS_WITH(fleet::check_cleanup_allowed(fleet::observe(c, state), {fleet::inspect_lower(c, image_of(c).name)}),
                      Catch::Contains("aplspawn10") && Catch::Contains("aplspawn stop"));
    sys::unmount(common_of(c).home_path / "aplspawn10");
    // The network an interrupted spawn made for aplspawn11 (its namespace, a veth on the bridge):
    // refused too, until stop takes it down; cleanup never leaves it without its record.
    make_bridge();
    fleet::create_network(c, c.fleet.at(1), state);
    CHECK_THROWS_WITH(fleet::check_cleanup_allowed(fleet::observe(c, state), {fleet::inspect_lower(c, image_of(c).name)}),
                      Catch::Contains("aplspawn11") && Catch::Contains("network namespace") &&
                          Catch::Contains("aplspawn stop"));
    REQUIRE(fleet::remove_network(state, "aplspawn11").change == Change::changed);
    CHECK_NOTHROW(fleet::check_cleanup_allowed(fleet::observe(c, state), {fleet::inspect_lower(c, image_of(c).name)}));

    auto plan = fleet::plan_cleanup(c, state, fleet::observe(c, state), true, false);
    for (const auto& g : plan.groups) fleet::apply_cleanup(g);
    for (auto name : {"aplspawn10", "aplspawn11", "aplspawn12"}) {
        CHECK_FALSE(fs::exists(c.paths.upper / name));
        CHECK_FALSE(fs::exists(c.paths.work / name));
        CHECK_FALSE(fs::exists(common_of(c).home_path / name));
    }
    CHECK(fs::exists(common_of(c).home_path / "othermachine/etc/os-release"));
    CHECK(fs::exists(c.paths.upper / "notes.txt"));
    CHECK_FALSE(fs::exists(state.containers_dir()));
    CHECK_FALSE(fs::exists(state.known_hosts()));
    CHECK_FALSE(fs::exists(fleet::lower_dir(c, image_of(c).name)));
    CHECK(fs::exists(state.net_state()));  // netup's, not ours to remove
    CHECK(fs::exists(c.paths.local_store / "debian-bookworm-latest.img"));  // no --images

    // A second plan has nothing left; --images takes the store (it lies under workingDirectory),
    // but keeps the image the config uses unless forced (a snapshot may be its only copy).
    auto again = fleet::plan_cleanup(c, state, fleet::observe(c, state), true, true);
    std::size_t left = 0;
    for (const auto& g : again.groups)
        if (g.dir != c.paths.local_store) left += g.names.size();
    CHECK(left == 0);
    for (const auto& g : again.groups) fleet::apply_cleanup(g);
    CHECK(fs::exists(c.paths.local_store / "debian-bookworm-latest.img"));
    REQUIRE(again.refused.size() == 1);
    CHECK_THAT(again.refused[0], Catch::Contains("debian-bookworm-latest.img kept") &&
                                     Catch::Contains("--force"));
    auto forced = fleet::plan_cleanup(c, state, fleet::observe(c, state), true, true, true);
    for (const auto& g : forced.groups) fleet::apply_cleanup(g);
    CHECK_FALSE(fs::exists(c.paths.local_store / "debian-bookworm-latest.img"));
}
