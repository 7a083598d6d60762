// Networks besides the bridge (issue 13): the top-level networks section, a group's ranges on
// them, and the addresses each container gets (the n-th container of a group gets the n-th
// address of each of its ranges). The refusals are table-driven in config_files_test.cpp
// (data/config/bad/networks-*.yaml).
#include "aplspawn/config.hpp"

#include <catch2/catch.hpp>

using namespace aplspawn;
namespace fs = std::filesystem;

namespace {
const fs::path kData = fs::path(APLSPAWN_TEST_DATA) / "config";

// "backend=10.20.0.30 storage=10.50.1.0": a container's attachments, in order.
std::string attachments(const config::Container& ct) {
    std::string out;
    for (const auto& a : ct.networks)
        out += (out.empty() ? "" : " ") + a.network->name + "=" + a.ip.str();
    return out;
}
}  // namespace

TEST_CASE("the networks section: bridges, the host's addresses, NAT or isolated", "[config][networks]") {
    auto c = config::load(kData / "good" / "networks.yaml");
    REQUIRE(c.networks.size() == 2);
    const auto& storage = *c.networks[0];
    const auto& backend = *c.networks[1];
    CHECK(storage.name == "storage");
    CHECK(storage.bridge == "apsst0");
    CHECK(storage.address.str() == "10.50.0.1");
    CHECK(storage.prefix == 16);
    CHECK(storage.subnet.str() == "10.50.0.0/16");
    CHECK(storage.nat);
    CHECK(backend.name == "backend");
    CHECK(backend.subnet.str() == "10.20.0.0/24");
    CHECK_FALSE(backend.nat);  // the default: isolated
    CHECK(c.find_network("backend") == &backend);
    CHECK(c.find_network("front") == nullptr);
    CHECK(c.where("networks.backend.bridge").ends_with("networks.yaml:15: networks.backend.bridge"));
}

TEST_CASE("the n-th container of a group gets the n-th address of each of its ranges",
          "[config][networks]") {
    auto c = config::load(kData / "good" / "networks.yaml");
    REQUIRE(c.fleet.size() == 5);
    // web: main network only.
    CHECK(c.find("web10")->networks.empty());
    CHECK(c.find("web11")->networks.empty());
    // db: in the order of the networks section (storage first), whatever order the group uses.
    CHECK(attachments(*c.find("db30")) == "storage=10.50.1.0 backend=10.20.0.30");
    CHECK(attachments(*c.find("db31")) == "storage=10.50.1.1 backend=10.20.0.31");
    CHECK(attachments(*c.find("cache50")) == "backend=10.20.0.50");
    // The group's ranges, where they are written.
    const auto& db = *c.find_group("db");
    REQUIRE(db.networks.size() == 2);
    CHECK(db.networks[0].network->name == "storage");
    CHECK(db.networks[0].key == "groups.db.networks.storage");
    CHECK(db.networks[1].begin.str() == "10.20.0.30");
    CHECK(db.networks[1].end.str() == "10.20.0.40");
    CHECK(db.origin("networks") == "groups.db.networks");
    // Both containers on one network share its Network.
    CHECK(c.find("db30")->networks[1].network == c.find("cache50")->networks[0].network);
}

TEST_CASE("without groups, cntCommon.networks gives the implicit group its ranges",
          "[config][networks]") {
    auto c = config::load(kData / "good" / "networks-without-groups.yaml");
    REQUIRE(c.fleet.size() == 3);
    CHECK(attachments(c.fleet[0]) == "backend=10.20.0.100");
    CHECK(attachments(c.fleet[2]) == "backend=10.20.0.102");
    CHECK(c.groups.front()->origin("networks") == "cntCommon.networks");
}

TEST_CASE("a file without networks has none, and no container has an attachment", "[config][networks]") {
    auto c = config::load(kData / "good" / "groups.yaml");
    CHECK(c.networks.empty());
    for (const auto& ct : c.fleet) CHECK(ct.networks.empty());
}

TEST_CASE("network names: what can name an interface in every container", "[config][networks]") {
    for (const char* ok : {"backend", "b", "net_2", "storage0", "abcdefghijklmno"})
        CHECK(config::is_valid_network_name(ok));
    for (const char* bad : {"", "Backend", "2net", "back-end", "back.end", "abcdefghijklmnop", "lo",
                            "host0", "sit0", "gre0", "tunl0", "ip6tnl0", "_x"}) {
        INFO(bad);
        CHECK_FALSE(config::is_valid_network_name(bad));
    }
}
