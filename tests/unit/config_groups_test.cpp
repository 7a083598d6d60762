// Groups: what a file with `groups` means (inheritance, overrides, per-group images, vars and
// binds), the implicit group of a file without them, and target selection. The refusals are
// table-driven in config_files_test.cpp (data/config/bad/groups-*.yaml).
#include "aplspawn/config.hpp"
#include "aplspawn/error.hpp"
#include "aplspawn/fleet/targets.hpp"
#include "config/yaml_json.hpp"

#include <catch2/catch.hpp>

using namespace aplspawn;
namespace fs = std::filesystem;

namespace {
const fs::path kData = fs::path(APLSPAWN_TEST_DATA) / "config";

std::vector<std::string> names(const config::Config& c) {
    std::vector<std::string> out;
    for (const auto& ct : c.fleet) out.push_back(ct.name);
    return out;
}
}  // namespace

TEST_CASE("a file without groups is one implicit group named aplspawned", "[config][groups]") {
    auto c = config::load(kData / "good" / "minimal.yaml");
    REQUIRE(c.groups.size() == 1);
    CHECK(c.groups[0]->name == "aplspawned");
    CHECK(c.groups[0]->implicit);
    CHECK_FALSE(c.has_groups());
    REQUIRE(c.fleet.size() == 3);
    for (const auto& ct : c.fleet) CHECK(ct.group == c.groups[0]);
    CHECK(c.fleet[2].index == 2);
    CHECK(c.groups[0]->origin("amount") == "cntCommon.amount");
    CHECK(c.groups[0]->origin("userName") == "cntVariables.userName");
    CHECK(c.where(c.groups[0]->origin("ipRange")).ends_with("minimal.yaml:16: cntCommon.ipRange"));
}

TEST_CASE("groups inherit the top-level sections and override what they set", "[config][groups]") {
    auto c = config::load(kData / "good" / "groups.yaml");
    REQUIRE(c.has_groups());
    REQUIRE(c.groups.size() == 2);
    const auto& web = *c.groups[0];
    const auto& db = *c.groups[1];
    CHECK(web.name == "web");
    CHECK(db.name == "db");
    // Containers: group by group in file order, names from nameTmpl (default: the group name).
    CHECK(names(c) == std::vector<std::string>{"web10", "web11", "database30"});
    CHECK(c.fleet[1].index == 1);
    CHECK(c.fleet[2].index == 0);
    CHECK(c.find("database30")->group.get() == &db);
    CHECK(c.find_group("db") == &db);
    CHECK(c.find_group("nope") == nullptr);
    // Inherited.
    CHECK(web.vars.user_name == "tester");
    CHECK(web.vars.user_group == "tester");
    CHECK(web.common.ready_timeout_sec == 90);
    CHECK(db.common.ready_timeout_sec == 90);
    CHECK(web.common.home_path == kData / "good" / "machines");
    CHECK(db.common.ssh_private_key == kData / "good" / "keys" / "fleet");
    CHECK(web.common.boot_profile == config::BootProfile::full);
    CHECK(web.common.host_key_types == config::default_host_key_types());
    // Overridden, and userGroup follows the group's own userName.
    CHECK(db.vars.user_name == "dbadmin");
    CHECK(db.vars.user_group == "dbadmin");
    CHECK(db.common.boot_profile == config::BootProfile::lean);
    CHECK(db.common.host_key_types == std::vector<std::string>{"ed25519"});
    // Where each value is written.
    CHECK(db.origin("bootProfile") == "groups.db.bootProfile");
    CHECK(db.origin("readyTimeout") == "cntCommon.readyTimeout");
    CHECK(web.origin("nameTmpl") == "groups.web");
    CHECK(c.where(db.origin("userName")).ends_with("groups.yaml:43: groups.db.userName"));
    // inventoryFile is fleet-wide.
    CHECK(c.inventory_file == kData / "good" / "inventory.ini");
}

TEST_CASE("a group's image: its keys over the top level's, url and sha256 pin only that image",
          "[config][groups]") {
    auto c = config::load(kData / "good" / "groups.yaml");
    const auto& web = c.groups[0]->image;
    const auto& db = c.groups[1]->image;
    CHECK(web.url == "file:///var/cache/aplspawn/repo/debian-bookworm-latest.img");
    CHECK(web.sha256 == std::string(63, '0') + "1");
    CHECK(db.os == "debian");
    CHECK(db.release == "trixie");
    CHECK(db.url == "file:///var/cache/aplspawn/repo/debian-trixie-latest.img");
    CHECK(db.sha256.empty());  // the pinned checksum was the bookworm image's
    CHECK(db.name == "debian-trixie-latest");
    auto images = c.images();
    REQUIRE(images.size() == 2);
    CHECK(images[0]->name == "debian-bookworm-latest");
    CHECK(images[1]->name == "debian-trixie-latest");
    CHECK(c.where(c.groups[1]->origin("image.release")).ends_with("groups.yaml:40: groups.db.image.release"));
}

TEST_CASE("group vars keep the types Ansible's YAML would give them", "[config][groups]") {
    auto c = config::load(kData / "good" / "groups.yaml");
    const auto& v = c.groups[0]->ansible_vars;
    CHECK(v["http_port"] == 8080);
    CHECK(v["quoted_port"] == "8080");
    CHECK(v["enabled"] == true);
    CHECK(v["ratio"] == 1.5);
    CHECK(v["nothing"].is_null());
    CHECK(v["tags"] == nlohmann::ordered_json::array({"a", 2}));
    CHECK(v["nested"]["k"] == "v");
    CHECK(c.groups[1]->ansible_vars.empty());
}

TEST_CASE("YAML 1.1 plain scalars as PyYAML reads them", "[config][groups]") {
    using config::plain_scalar;
    CHECK(plain_scalar("42") == 42);
    CHECK(plain_scalar("-7") == -7);
    CHECK(plain_scalar("0x1f") == 31);
    CHECK(plain_scalar("017") == 15);  // YAML 1.1 octal
    CHECK(plain_scalar("1_000") == 1000);
    CHECK(plain_scalar("3.25") == 3.25);
    CHECK(plain_scalar(".5") == 0.5);
    CHECK(plain_scalar("1.0e+3") == 1000.0);
    CHECK(plain_scalar("1e3") == "1e3");  // PyYAML wants a dot
    for (const char* t : {"yes", "Yes", "YES", "true", "True", "on", "ON"}) CHECK(plain_scalar(t) == true);
    for (const char* f : {"no", "No", "false", "FALSE", "off"}) CHECK(plain_scalar(f) == false);
    CHECK(plain_scalar("y") == "y");
    CHECK(plain_scalar("~").is_null());
    CHECK(plain_scalar("null").is_null());
    CHECK(plain_scalar("").is_null());
    CHECK(plain_scalar("10.30.0.1") == "10.30.0.1");
    CHECK(plain_scalar(".inf") == ".inf");  // JSON has no infinity: kept as text
    CHECK(plain_scalar("web tier") == "web tier");
}

TEST_CASE("group binds: SOURCE:DESTINATION[:ro|rw], read-write by default, relative to the file",
          "[config][groups]") {
    auto c = config::load(kData / "good" / "groups.yaml");
    const auto& b = c.groups[0]->binds;
    REQUIRE(b.size() == 2);
    CHECK(b[0].host == kData / "good" / "roles");
    CHECK(b[0].container == "/srv/roles");
    CHECK(b[0].read_only);
    CHECK(b[0].key == "groups.web.binds[0]");
    CHECK(b[1].host == "/srv/data");
    CHECK_FALSE(b[1].read_only);
    CHECK(c.where(b[1].key).ends_with("groups.yaml:36: groups.web.binds[1]"));
    CHECK(c.groups[1]->binds.empty());
}

TEST_CASE("targets: group names, container names, recorded leftovers, unknown ones refused",
          "[config][groups]") {
    auto c = config::load(kData / "good" / "groups.yaml");
    std::vector<std::pair<std::string, std::string>> recorded{{"web12", "web"}, {"old5", ""}};
    auto all = fleet::select_targets(c, recorded, {});
    CHECK(all.all);
    CHECK(all.of(c).size() == 3);

    auto web = fleet::select_targets(c, recorded, {"web"});
    CHECK_FALSE(web.all);
    CHECK(web.names == std::set<std::string, std::less<>>{"web10", "web11", "web12"});
    REQUIRE(web.of(c).size() == 2);
    CHECK(web.of(c)[0]->name == "web10");

    auto some = fleet::select_targets(c, recorded, {"database30", "old5", "web11"});
    CHECK(some.names == std::set<std::string, std::less<>>{"database30", "old5", "web11"});

    try {
        fleet::select_targets(c, recorded, {"web", "cache"});
        FAIL("an unknown target was accepted");
    } catch (const Error& e) {
        CHECK(e.exit_code() == Exit::usage);
        CHECK_THAT(e.message(), Catch::StartsWith("cache: no group or container of that name") &&
                                    Catch::Contains("groups: web, db"));
    }
}

TEST_CASE("a group's image from a snapshot: the store's NAME.img, nothing inherited to fetch",
          "[config][groups]") {
    auto c = config::load(kData / "good" / "snapshot.yaml");
    REQUIRE(c.groups.size() == 2);
    const auto& base = c.groups[0]->image;
    const auto& gold = c.groups[1]->image;
    CHECK(base.snapshot.empty());
    CHECK(base.name == "debian-bookworm-latest");
    CHECK(gold.snapshot == "golden");
    CHECK(gold.file_name == "golden.img");
    CHECK(gold.name == "golden");
    CHECK(gold.url.empty());
    CHECK(gold.sha256.empty());  // the top level's pin is the bookworm image's
    CHECK(gold.release.empty());
    REQUIRE(c.images().size() == 2);
}

TEST_CASE("image names: what a snapshot may be called", "[config]") {
    for (const char* ok : {"golden", "web-1.2_rc", "a", "Debian12"}) {
        INFO(ok);
        CHECK(config::is_valid_image_name(ok));
    }
    for (const char* bad : {"", ".hidden", "-x", "a/b", "../etc", "golden.img", "sp ace", "by sha"}) {
        INFO(bad);
        CHECK_FALSE(config::is_valid_image_name(bad));
    }
    CHECK(config::is_valid_image_name(std::string(64, 'g')));
    CHECK_FALSE(config::is_valid_image_name(std::string(65, 'g')));
}
