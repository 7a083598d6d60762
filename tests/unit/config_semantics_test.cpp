// What the parsed config means: the original's semantics, defaults, path resolution.
#include "aplspawn/config.hpp"
#include "aplspawn/error.hpp"
#include "aplspawn/sys/fs.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <sstream>

using namespace aplspawn;
namespace fs = std::filesystem;

namespace {
const fs::path kData = fs::path(APLSPAWN_TEST_DATA) / "config";
}

TEST_CASE("the original config means what it meant", "[config]") {
    auto c = config::load(kData / "good" / "original.yaml");
    CHECK(c.bridge.name == "nspawnd0");
    CHECK(c.bridge.address.str() == "10.10.12.1");
    CHECK(c.bridge.subnet.str() == "10.10.12.0/26");
    CHECK(c.nat.chain_name == "NSPAWN");
    CHECK(c.nat.table == "aplspawn_NSPAWN");
    CHECK(c.groups.front()->image.url == "https://spgrind.me/mkosimages/debian-stretch-latest.img");
    CHECK(c.groups.front()->image.file_name == "debian-stretch-latest.img");
    CHECK(c.groups.front()->image.name == "debian-stretch-latest");
    REQUIRE(c.groups.front()->image.ignored_loop_device);
    REQUIRE(c.notes.size() == 1);
    CHECK_THAT(c.notes[0], Catch::Contains("image.loopDevice '/dev/loop6' is ignored"));
    CHECK(c.groups.front()->vars.user_name == "test");
    CHECK(c.groups.front()->vars.user_group == "testg");
    CHECK(c.groups.front()->vars.dns->str() == "8.8.8.8");
    CHECK(c.groups.front()->common.bind_host_resolve);
    CHECK(c.groups.front()->common.mode() == config::StartMode::script);
    CHECK(c.groups.front()->common.home_path == "/var/lib/machines");
    // relative paths resolve against the config file's directory
    CHECK(c.groups.front()->vars.ssh_public_key == kData / "good" / "id_rsa.pub");
    CHECK(c.groups.front()->common.bind_host == kData / "good" / "starter");
    CHECK(c.inventory_file == kData / "good" / "inventory.txt");
    // ipRange [10, 40), the first 10: aplspawn10 .. aplspawn19
    REQUIRE(c.fleet.size() == 10);
    CHECK(c.fleet.front().name == "aplspawn10");
    CHECK(c.fleet.front().ip.str() == "10.10.12.10");
    CHECK(c.fleet.back().name == "aplspawn19");
    CHECK(c.fleet.back().ip.str() == "10.10.12.19");
    CHECK(c.where("bridge.name").ends_with("original.yaml:4: bridge.name"));
}

TEST_CASE("defaults fill what the minimal config leaves out", "[config]") {
    const char* home = std::getenv("HOME");
    REQUIRE(home);
    auto c = config::load(kData / "good" / "minimal.yaml");
    CHECK(c.paths.working_dir == fs::path(home) / "fleet");
    CHECK(c.paths.local_store == fs::path(home) / "fleet" / "images");
    CHECK(c.paths.lower == fs::path(home) / "fleet" / "lower");
    CHECK(c.paths.upper == fs::path(home) / "fleet" / "upper");
    CHECK(c.paths.work == fs::path(home) / "fleet" / "work");
    CHECK(c.paths.state == fs::path(home) / "fleet" / "state");
    CHECK(c.nat.chain_name == "NSPAWN");
    CHECK(c.groups.front()->vars.user_group == "ci");
    CHECK(c.groups.front()->vars.gateway == c.bridge.address);
    CHECK(c.groups.front()->vars.prefix == 24);
    CHECK_FALSE(c.groups.front()->vars.dns);
    CHECK(c.groups.front()->common.name_template == "aplspawn");
    CHECK(c.groups.front()->common.mode() == config::StartMode::boot);
    CHECK(c.groups.front()->common.ready_timeout_sec == 120);
    CHECK(c.groups.front()->common.home_path == "/var/lib/machines");
    CHECK(c.inventory_file.empty());
    CHECK(c.groups.front()->common.host_key_types == std::vector<std::string>{"ed25519", "ecdsa"});  // rsa: opt-in
    // a compressed URL is stored decompressed under its name without the suffix
    CHECK(c.groups.front()->image.file_name == "os.raw");
    CHECK(c.groups.front()->image.name == "os");
    CHECK(c.notes.empty());
    REQUIRE(c.fleet.size() == 3);
    CHECK(c.fleet[2].name == "aplspawn102");
}

TEST_CASE("cntCommon.hostKeyTypes names the host keys and their order", "[config]") {
    auto c = config::load(kData / "good" / "host-key-types.yaml");
    CHECK(c.groups.front()->common.host_key_types == std::vector<std::string>{"rsa", "ed25519", "ecdsa"});
}

TEST_CASE("a repo given as a directory becomes a file:// URL", "[config]") {
    auto c = config::parse(R"(
bridge: {name: b0, address: 10.0.0.1, netPrefix: 24}
path: {workingDirectory: /w}
image: {os: debian, release: bookworm, repo: ../repo/}
cntVariables: {userName: u, sshPublicKeyPath: /k.pub}
cntCommon: {amount: 1, sshPrivateKeyPath: /k, ipRange: [10.0.0.2, 10.0.0.3]}
)",
                           "/etc/aplspawn/x.yaml");
    CHECK(c.groups.front()->image.url == "file:///etc/repo/debian-bookworm-latest.img");
}

TEST_CASE("resolve_path expands ~ and resolves against the base", "[config]") {
    const char* home = std::getenv("HOME");
    REQUIRE(home);
    CHECK(config::resolve_path("~", "/base") == fs::path(home).lexically_normal());
    CHECK(config::resolve_path("~/x/y", "/base") == fs::path(home) / "x" / "y");
    CHECK(config::resolve_path("~root/k", "/base") == "/root/k");
    CHECK(config::resolve_path("a/../b/", "/base") == "/base/b");
    CHECK(config::resolve_path("/abs/p", "/base") == "/abs/p");
}

TEST_CASE("locate follows -c, then $APLSPAWN_CONFIG", "[config]") {
    auto good = kData / "good" / "original.yaml";
    CHECK(config::locate(good) == good);
    try {
        config::locate(fs::path("/nonexistent/aplspawn.yaml"));
        FAIL("located a missing file");
    } catch (const Error& e) {
        CHECK(e.exit_code() == Exit::usage);
        CHECK_THAT(e.message(), Catch::Contains("/nonexistent/aplspawn.yaml"));
    }
    ::setenv("APLSPAWN_CONFIG", good.c_str(), 1);
    CHECK(config::locate(std::nullopt) == good);
    ::setenv("APLSPAWN_CONFIG", "/nonexistent/env.yaml", 1);
    CHECK_THROWS_WITH(config::locate(std::nullopt), Catch::Contains("$APLSPAWN_CONFIG"));
    ::unsetenv("APLSPAWN_CONFIG");
}

TEST_CASE("the shipped config/aplspawn.yaml is valid: three containers", "[config]") {
    auto c = config::load(fs::path(APLSPAWN_SOURCE_DIR) / "config" / "aplspawn.yaml");
    REQUIRE(c.fleet.size() == 3);
    CHECK(c.fleet[0].name == "aplspawn10");
    CHECK(c.fleet[2].name == "aplspawn12");
    CHECK(c.groups.front()->common.mode() == config::StartMode::boot);
    CHECK(c.groups.front()->image.url == "file:///var/cache/aplspawn/repo/debian-bookworm-latest.img");
    CHECK(c.notes.empty());
}

TEST_CASE("the shipped config's commented groups and networks blocks are valid as documented",
          "[config][groups][networks]") {
    // What its comments say to do: remove amount, ipRange and nameTmpl from cntCommon, uncomment
    // the groups block (and db's networks line) and the networks block.
    std::string text = sys::read_file(fs::path(APLSPAWN_SOURCE_DIR) / "config" / "aplspawn.yaml");
    std::string out;
    bool commented_blocks = false;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.starts_with("  amount:") || line.starts_with("  ipRange:") || line.starts_with("  nameTmpl:")) continue;
        if (line == "# groups:" || line == "# networks:") commented_blocks = true;
        if (line.empty()) commented_blocks = false;  // each block ends at a blank line
        if (commented_blocks && line.starts_with("# ")) line = line.substr(2);
        if (line.starts_with("    # networks:")) line = "    networks:" + line.substr(15);
        out += line + "\n";
    }
    auto c = config::parse(out, fs::path(APLSPAWN_SOURCE_DIR) / "config" / "aplspawn.yaml");
    REQUIRE(c.fleet.size() == 3);
    REQUIRE(c.networks.size() == 1);
    CHECK_FALSE(c.networks[0]->nat);
    REQUIRE(c.find("db30"));
    REQUIRE(c.find("db30")->networks.size() == 1);
    CHECK(c.find("db30")->networks[0].ip.str() == "10.20.0.30");
    CHECK(c.find("web10")->networks.empty());
}
