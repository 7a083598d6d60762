#include "aplspawn/ipv4.hpp"

#include <catch2/catch.hpp>

using aplspawn::Ipv4;
using aplspawn::Subnet;

TEST_CASE("IPv4 parsing is strict", "[ipv4]") {
    CHECK(Ipv4::parse("10.10.12.1")->str() == "10.10.12.1");
    CHECK(Ipv4::parse("0.0.0.0")->value == 0);
    CHECK(Ipv4::parse("255.255.255.255")->value == 0xffffffffu);
    for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.-1", "01.2.3.4",
                            "1.2.3.4 ", " 1.2.3.4", "1..2.3", "a.b.c.d", "1.2.3.4/24", "1234.1.1.1"})
        CHECK_FALSE(Ipv4::parse(bad));
}

TEST_CASE("subnet math", "[ipv4]") {
    Subnet s = Subnet::of(*Ipv4::parse("10.10.12.1"), 26);
    CHECK(s.str() == "10.10.12.0/26");
    CHECK(s.broadcast().str() == "10.10.12.63");
    CHECK(s.contains(*Ipv4::parse("10.10.12.63")));
    CHECK_FALSE(s.contains(*Ipv4::parse("10.10.12.64")));
    CHECK(s.is_host(*Ipv4::parse("10.10.12.62")));
    CHECK_FALSE(s.is_host(*Ipv4::parse("10.10.12.0")));
    CHECK_FALSE(s.is_host(*Ipv4::parse("10.10.12.63")));
    Subnet p31 = Subnet::of(*Ipv4::parse("10.0.0.1"), 31);
    CHECK(p31.is_host(*Ipv4::parse("10.0.0.0")));
    CHECK(Subnet::of(*Ipv4::parse("192.168.1.77"), 24).network.str() == "192.168.1.0");
    CHECK(Subnet::of(*Ipv4::parse("192.168.1.77"), 1).network.str() == "128.0.0.0");
}
