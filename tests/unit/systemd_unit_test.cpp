// The systemd launcher's pure parts: unit names and the ExecStart of a container's unit.
#include "aplspawn/fleet/launch.hpp"
#include "aplspawn/fleet/systemd.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace aplspawn;
namespace sd = aplspawn::fleet::systemd;

namespace {

long count(const std::vector<std::string>& v, const std::string& s) {
    return std::count(v.begin(), v.end(), s);
}

}  // namespace

TEST_CASE("a container's unit is aplspawn-NAME.service", "[systemd]") {
    CHECK(sd::unit_name("aplspawn10") == "aplspawn-aplspawn10.service");
    CHECK(sd::unit_name("web-1.lab") == "aplspawn-web-1.lab.service");
}

TEST_CASE("ExecStart: nspawn with --keep-unit and registration on, before the shared arguments",
          "[systemd]") {
    auto cmd = sd::nspawn_command("/usr/bin/systemd-nspawn",
                                  {"--quiet", "--directory=/m/a", "--machine=a", "--boot"});
    REQUIRE(cmd.size() == 7);
    CHECK(cmd[0] == "/usr/bin/systemd-nspawn");
    CHECK(cmd[1] == "--keep-unit");
    CHECK(cmd[2] == "--register=yes");
    CHECK(cmd[3] == "--quiet");
    CHECK(cmd.back() == "--boot");
}

TEST_CASE("ExecStart: the detached launcher's --register=no never reaches the unit", "[systemd]") {
    auto cmd = sd::nspawn_command("/usr/bin/systemd-nspawn",
                                  {"--register=no", "--keep-unit", "--machine=a", "--register=false"});
    CHECK(count(cmd, "--register=no") == 0);
    CHECK(count(cmd, "--register=false") == 0);
    CHECK(count(cmd, "--keep-unit") == 1);
    CHECK(count(cmd, "--register=yes") == 1);
    CHECK(count(cmd, "--machine=a") == 1);
}

TEST_CASE("ExecStart: the startup script's own arguments after -- are left alone", "[systemd]") {
    fleet::LaunchSpec spec;
    spec.name = "aplspawn10";
    spec.root = "/var/lib/machines/aplspawn10";
    spec.network_namespace = "/run/netns/aplspawn-aplspawn10";
    spec.mode = config::StartMode::script;
    spec.command = {"/opt/start.sh", "--register=no", "--keep-unit"};
    auto args = fleet::nspawn_arguments(spec);
    auto cmd = sd::nspawn_command("/usr/bin/systemd-nspawn", args);

    auto sep = std::find(cmd.begin(), cmd.end(), "--");
    REQUIRE(sep != cmd.end());
    std::vector<std::string> payload(sep + 1, cmd.end());
    CHECK(payload == spec.command);
    std::vector<std::string> options(cmd.begin(), sep);
    CHECK(count(options, "--register=no") == 0);
    CHECK(count(options, "--register=yes") == 1);
    CHECK(count(options, "--keep-unit") == 1);
    CHECK(count(options, "--machine=aplspawn10") == 1);
    CHECK(count(options, "--capability=CAP_NET_ADMIN") == 1);
    // Every shared argument is kept, in order (the shared ones have no registration options).
    CHECK(std::vector<std::string>(cmd.begin() + 3, cmd.end()) == args);
}
