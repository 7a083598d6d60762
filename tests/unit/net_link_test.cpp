// Pure parts of net/link.hpp.
#include "aplspawn/net/link.hpp"

#include <catch2/catch.hpp>

using namespace aplspawn;

TEST_CASE("stable MACs: the same for a seed, locally administered unicast", "[net]") {
    auto a = net::stable_mac("aplspawn:web10:host0");
    CHECK(a == net::stable_mac("aplspawn:web10:host0"));
    CHECK_FALSE(a == net::stable_mac("aplspawn:web11:host0"));
    CHECK_FALSE(a == net::stable_mac("aplspawn:web10:backend"));
    CHECK((a.bytes[0] & 0x01) == 0);  // unicast
    CHECK((a.bytes[0] & 0x02) == 2);  // locally administered
    CHECK(a.str().size() == 17);
    CHECK(net::MacAddress{{0x02, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e}}.str() == "02:1a:2b:3c:4d:5e");
}
