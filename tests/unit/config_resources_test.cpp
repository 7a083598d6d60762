// groups.NAME.resources: the values a group's limits take (memory sizes, CPU counts and lists,
// tasks), inheritance from cntCommon.resources, and the list helpers the cgroup writes use. The
// refusals are table-driven in config_files_test.cpp (data/config/bad/resources-*.yaml).
#include "aplspawn/config.hpp"
#include "config/resources.hpp"

#include <catch2/catch.hpp>

using namespace aplspawn;

namespace {

const char* kBase = R"(bridge: {name: grbr0, address: 10.30.0.1, netPrefix: 24}
path: {workingDirectory: /tmp/aplspawn-res}
image: {os: debian, release: bookworm, repo: /var/cache/aplspawn/repo}
cntVariables: {userName: tester, sshPublicKeyPath: /k.pub}
cntCommon: {sshPrivateKeyPath: /k}
)";

config::Config parse(const std::string& groups, const std::string& base = kBase) {
    return config::parse(base + groups, "/tmp/aplspawn-res/aplspawn.yaml");
}

}  // namespace

TEST_CASE("memory sizes take K, M and G as binary units", "[config][resources]") {
    CHECK(config::parse_memory_size("512M") == 512ull << 20);
    CHECK(config::parse_memory_size("512m") == 512ull << 20);
    CHECK(config::parse_memory_size("2G") == 2ull << 30);
    CHECK(config::parse_memory_size("65536K") == 64ull << 20);
    CHECK_FALSE(config::parse_memory_size("512"));
    CHECK_FALSE(config::parse_memory_size("M"));
    CHECK_FALSE(config::parse_memory_size("1.5G"));
    CHECK_FALSE(config::parse_memory_size("-1G"));
    CHECK_FALSE(config::parse_memory_size("512MB"));
    CHECK_FALSE(config::parse_memory_size("99999999999999G"));  // overflow refused, not wrapped
}

TEST_CASE("CPU lists in the kernel's form, both ways", "[config][resources]") {
    CHECK(config::parse_cpu_list("0-1") == std::vector<int>{0, 1});
    CHECK(config::parse_cpu_list("1") == std::vector<int>{1});
    CHECK(config::parse_cpu_list("3,0-1,1") == std::vector<int>{0, 1, 3});
    CHECK_FALSE(config::parse_cpu_list(""));
    CHECK_FALSE(config::parse_cpu_list("0-"));
    CHECK_FALSE(config::parse_cpu_list("2-1"));
    CHECK_FALSE(config::parse_cpu_list("0,"));
    CHECK_FALSE(config::parse_cpu_list("a"));
    CHECK(config::cpu_list_string({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8");
    CHECK(config::cpu_list_string({1}) == "1");
    CHECK(config::cpu_list_string({}) == "");
    auto host = config::host_cpus();
    REQUIRE_FALSE(host.empty());
    CHECK(host.front() == 0);
}

TEST_CASE("a group's resources: each optional, a count of CPUs is the host's first N",
          "[config][resources]") {
    auto c = parse(R"(groups:
  db:
    ipRange: [10.30.0.20, 10.30.0.30]
    amount: 1
    resources: {memory: 256M, cpus: 1, tasks: 2048}
  web:
    ipRange: [10.30.0.10, 10.30.0.20]
    amount: 1
  cache:
    ipRange: [10.30.0.30, 10.30.0.40]
    amount: 1
    resources: {cpus: "0"}
)");
    const auto& db = c.find_group("db")->resources;
    CHECK(db.memory_bytes == 256ull << 20);
    CHECK(db.memory_mb() == 256);
    CHECK(db.cpus == std::vector<int>{config::host_cpus().front()});
    CHECK(db.tasks == 2048u);
    CHECK(db.any());
    const auto& web = c.find_group("web")->resources;
    CHECK_FALSE(web.any());
    CHECK_FALSE(web.memory_mb());
    const auto& cache = c.find_group("cache")->resources;
    CHECK(cache.cpus == std::vector<int>{0});
    CHECK_FALSE(cache.memory_bytes);
    CHECK(c.where(c.find_group("db")->origin("resources")).ends_with(":10: groups.db.resources"));
}

TEST_CASE("cntCommon.resources is every group's default, a group's own mapping replaces it",
          "[config][resources]") {
    std::string base = kBase;
    base.replace(base.find("cntCommon: {sshPrivateKeyPath: /k}"), 34,
                 "cntCommon: {sshPrivateKeyPath: /k, resources: {memory: 1G, tasks: 512}}");
    auto c = parse(R"(groups:
  a:
    ipRange: [10.30.0.20, 10.30.0.30]
    amount: 1
  b:
    ipRange: [10.30.0.10, 10.30.0.20]
    amount: 1
    resources: {memory: 64M}
)",
                   base);
    CHECK(c.find_group("a")->resources.memory_bytes == 1ull << 30);
    CHECK(c.find_group("a")->resources.tasks == 512u);
    CHECK(c.find_group("a")->origin("resources") == "cntCommon.resources");
    CHECK(c.find_group("b")->resources.memory_bytes == 64ull << 20);
    CHECK_FALSE(c.find_group("b")->resources.tasks);
}

TEST_CASE("a YAML list of CPU numbers is a list, a quoted number a CPU, a plain one a count",
          "[config][resources]") {
    if (config::host_cpus().size() < 2) {
        WARN("needs a host with 2 CPUs: not checked");
        return;
    }
    auto c = parse(R"(groups:
  a:
    ipRange: [10.30.0.20, 10.30.0.30]
    amount: 1
    resources: {cpus: [1, 0]}
  b:
    ipRange: [10.30.0.10, 10.30.0.20]
    amount: 1
    resources: {cpus: "1"}
  c:
    ipRange: [10.30.0.30, 10.30.0.40]
    amount: 1
    resources: {cpus: 2}
)");
    CHECK(c.find_group("a")->resources.cpus == std::vector<int>{0, 1});
    CHECK(c.find_group("b")->resources.cpus == std::vector<int>{1});
    CHECK(c.find_group("c")->resources.cpus == std::vector<int>{0, 1});
}
