// `aplspawn list`: the table and its --json, from rows (pure).
#include "aplspawn/health/overview.hpp"

#include <catch2/catch.hpp>

using namespace aplspawn;

namespace {

health::OverviewRow row(std::string name, std::string state) {
    health::OverviewRow r;
    r.name = std::move(name);
    r.group = "web";
    r.address = "10.10.12.10";
    r.image = "debian-bookworm-latest";
    r.state = std::move(state);
    return r;
}

}  // namespace

TEST_CASE("list: aligned columns, the count line, a NETWORKS column only with networks", "[health][list]") {
    auto a = row("web10", "running");
    a.pid = 4242;
    a.uptime = 192;
    auto b = row("web11", "stopped");
    CHECK(health::overview_table({a, b}) ==
          "NAME  GROUP ADDRESS     IMAGE                  STATE   PID  UPTIME\n"
          "web10 web   10.10.12.10 debian-bookworm-latest running 4242 3min 12s\n"
          "web11 web   10.10.12.10 debian-bookworm-latest stopped -    -\n"
          "\n"
          "2 containers listed (1 running, 1 stopped).\n");
    b.networks = {{"backend", "10.20.0.31"}, {"storage", "10.50.1.1"}};
    auto t = health::overview_table({a, b});
    CHECK_THAT(t, Catch::StartsWith("NAME  GROUP ADDRESS     IMAGE                  STATE   PID  UPTIME   NETWORKS\n"));
    CHECK_THAT(t, Catch::Contains("web10 web   10.10.12.10 debian-bookworm-latest running 4242 3min 12s -\n"));
    CHECK_THAT(t, Catch::Contains("stopped -    -        backend=10.20.0.31,storage=10.50.1.1\n"));
    auto j = health::overview_json({a, b});
    CHECK(j[0]["networks"] == nlohmann::ordered_json::object());
    CHECK(j[1]["networks"] == nlohmann::ordered_json{{"backend", "10.20.0.31"}, {"storage", "10.50.1.1"}});
    CHECK(health::format_uptime(45) == "45s");
    CHECK(health::format_uptime(7380) == "2h 03min");
}
