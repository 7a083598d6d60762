// Helpers for the fleet's integration tests (issue 5): tiny busybox images from
// tests/fixtures/make-test-image, the real Debian image from images/build-default-image (cached),
// a bridge for containers, a config for a fleet under a temporary directory.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/process.hpp"
#include "support/testing.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <thread>

namespace aplspawn::testing {

// Every entry below dir: type, mode, owner, size, mtime (ns), content or link target: two
// snapshots are equal when nothing below dir changed.
inline std::map<std::string, std::string> snapshot(const fs::path& dir) {
    std::map<std::string, std::string> m;
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
        struct stat st {};
        REQUIRE(::lstat(it->path().c_str(), &st) == 0);
        std::string v = fmt::format("{:o} {}:{} {} {}.{}", st.st_mode, st.st_uid, st.st_gid, st.st_size,
                                    st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        if (S_ISREG(st.st_mode)) v += " " + sys::read_file(it->path());
        if (S_ISLNK(st.st_mode)) v += " -> " + fs::read_symlink(it->path()).string();
        m[fs::relative(it->path(), dir).string()] = v;
    }
    return m;
}

// Builds a busybox test image (layout: gpt-root, gpt-label, gpt-single, gpt-none, gpt-esp-only,
// bare; fs: squashfs, ext4, erofs, btrfs, xfs) at `out`.
inline fs::path make_test_image(const fs::path& out, const std::string& layout = "gpt-root",
                                const std::string& fstype = "squashfs", bool evil = false) {
    std::vector<std::string> argv{std::string(APLSPAWN_SOURCE_DIR) + "/tests/fixtures/make-test-image",
                                  "--out", out.string(), "--layout", layout, "--fs", fstype};
    if (evil) argv.push_back("--evil");
    sys::RunOptions o;
    o.timeout = std::chrono::seconds(120);
    sys::run_checked(argv, o);
    return out;
}

// The default Debian image of `release` (images/build-default-image --release RELEASE: built on
// first use, ~2 min, and cached). Where: $APLSPAWN_IMAGE_REPO and $APLSPAWN_IMAGE_CACHE, which
// the script reads, else under /var/cache/aplspawn. Returns the published image's path.
inline fs::path default_image(const std::string& release = "bookworm") {
    sys::RunOptions o;
    o.timeout = std::chrono::seconds(900);
    auto r = sys::run_checked(
        {std::string(APLSPAWN_SOURCE_DIR) + "/images/build-default-image", "--release", release}, o);
    std::string out = r.out;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    if (auto nl = out.rfind('\n'); nl != std::string::npos) out = out.substr(nl + 1);
    return out;
}

// A bridge with the fleet's gateway address, made for the test (the test's namespace removes it).
inline void make_bridge(const std::string& name = "apltest0", const std::string& cidr = "10.77.0.1/24") {
    sys::run({"ip", "link", "del", name});  // left by an earlier test case in the same namespace
    sys::run_checked({"ip", "link", "add", name, "type", "bridge"});
    sys::run_checked({"ip", "addr", "add", cidr, "dev", name});
    sys::run_checked({"ip", "link", "set", name, "up"});
}

// One ICMP echo answered within a second (busybox's ping: iputils is not a dependency).
inline bool pings(const std::string& ip) {
    return sys::run({"busybox", "ping", "-c1", "-W1", ip}).ok();
}

// Writes the config (base_config + extra cntCommon lines) and returns it loaded.
inline config::Config write_config(const TempDir& dir, int amount = 2, std::string_view extra = "") {
    write_file(dir / "aplspawn.yaml", base_config(dir.path(), amount, extra));
    return config::load(dir / "aplspawn.yaml");
}

// The settings of a config without groups (its one implicit group).
inline const config::Group& group_of(const config::Config& c) { return *c.groups.front(); }
inline const config::Image& image_of(const config::Config& c) { return group_of(c).image; }
inline const config::Common& common_of(const config::Config& c) { return group_of(c).common; }
inline const config::ContainerVariables& vars_of(const config::Config& c) { return group_of(c).vars; }

// Puts an image where the config's store expects it (a symlink, as the store may do).
inline void install_image(const config::Config& c, const fs::path& image) {
    fs::create_directories(c.paths.local_store);
    fs::path dst = c.paths.local_store / image_of(c).file_name;
    std::error_code ec;
    fs::remove(dst, ec);
    fs::create_symlink(image, dst);
}

// Polls cond every 50 ms until it holds or timeout passes.
template <class F>
bool eventually(F&& cond, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        if (cond()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return cond();
}

}  // namespace aplspawn::testing
