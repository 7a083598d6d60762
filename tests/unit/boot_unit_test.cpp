// `aplspawn enable`'s unit: its name from the config path (systemd's path escaping), the quoting
// of its Exec lines, its text, and the marker that tells disable it is aplspawn's.
#include "aplspawn/fleet/boot_unit.hpp"

#include <catch2/catch.hpp>

using namespace aplspawn;

TEST_CASE("the boot unit is named after the config path, escaped as systemd-escape --path does",
          "[boot_unit]") {
    CHECK(fleet::escape_unit_path("/etc/aplspawn/aplspawn.yaml") == "etc-aplspawn-aplspawn.yaml");
    CHECK(fleet::escape_unit_path("/srv/my fleet/a-b.yaml") == "srv-my\\x20fleet-a\\x2db.yaml");
    CHECK(fleet::escape_unit_path("//srv//x/") == "srv-x");
    CHECK(fleet::escape_unit_path("/.hidden/f") == "\\x2ehidden-f");
    CHECK(fleet::escape_unit_path("/") == "-");
    CHECK(fleet::boot_unit_name("/etc/aplspawn/aplspawn.yaml") ==
          "aplspawn-fleet-etc-aplspawn-aplspawn.yaml.service");
    // Too long for a unit name (255): named by a hash of the path, the same every time.
    std::string deep = "/" + std::string(300, 'd') + "/f.yaml";
    auto name = fleet::boot_unit_name(deep);
    CHECK(name.size() < 64);
    CHECK(name.starts_with("aplspawn-fleet-"));
    CHECK(name == fleet::boot_unit_name(deep));
    CHECK(name != fleet::boot_unit_name("/" + std::string(300, 'e') + "/f.yaml"));
}

TEST_CASE("Exec arguments are quoted for systemd: backslash, quote, % and $ escaped",
          "[boot_unit]") {
    CHECK(fleet::quote_exec_argument("/usr/bin/aplspawn") == "\"/usr/bin/aplspawn\"");
    CHECK(fleet::quote_exec_argument("/a b/c\"d\\e") == "\"/a b/c\\\"d\\\\e\"");
    CHECK(fleet::quote_exec_argument("/x/100%/$HOME") == "\"/x/100%%/$$HOME\"");
}

TEST_CASE("the unit runs netup then spawn after the network, stop at shutdown, and is marked",
          "[boot_unit]") {
    auto text = fleet::boot_unit_text("/usr/local/bin/aplspawn", "/etc/a%b/fleet.yaml");
    CHECK(fleet::written_by_aplspawn(text));
    CHECK_FALSE(fleet::written_by_aplspawn("[Unit]\n" + text));
    CHECK_THAT(text, Catch::Contains("Description=aplspawn fleet of /etc/a%%b/fleet.yaml\n"));
    CHECK_THAT(text, Catch::Contains("\nWants=network-online.target\n"));
    CHECK_THAT(text, Catch::Contains("\nAfter=network-online.target"));
    CHECK_THAT(text, Catch::Contains("\nType=oneshot\nRemainAfterExit=yes\n"));
    const std::string start =
        "ExecStart=\"/usr/local/bin/aplspawn\" -c \"/etc/a%%b/fleet.yaml\" -o netup\n"
        "ExecStart=\"/usr/local/bin/aplspawn\" -c \"/etc/a%%b/fleet.yaml\" -o spawn\n"
        "ExecStop=\"/usr/local/bin/aplspawn\" -c \"/etc/a%%b/fleet.yaml\" -o stop\n";
    CHECK_THAT(text, Catch::Contains(start));
    CHECK_THAT(text, Catch::EndsWith("[Install]\nWantedBy=multi-user.target\n"));
}
