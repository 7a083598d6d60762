// IPv4 addresses and subnets as plain values: parsing, printing, range math.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aplspawn {

struct Ipv4 {
    std::uint32_t value = 0;  // host byte order

    // Strict dotted quad: four decimal octets 0..255, no leading zeros ("010" is refused,
    // since inet_aton would read it as octal), no spaces.
    static std::optional<Ipv4> parse(std::string_view text);

    std::string str() const;
    std::uint8_t last_octet() const { return static_cast<std::uint8_t>(value & 0xffu); }
    std::uint32_t network_order() const;  // for sockaddr_in / netlink attributes

    friend auto operator<=>(const Ipv4&, const Ipv4&) = default;
};

struct Subnet {
    Ipv4 network;
    int prefix = 0;  // 0..32

    // The subnet containing addr with the given prefix (host bits cleared).
    static Subnet of(Ipv4 addr, int prefix);

    std::uint32_t mask() const;
    Ipv4 broadcast() const;
    bool contains(Ipv4 addr) const;
    // A usable host address: inside, and neither network nor broadcast address (for prefixes
    // up to /30; /31 and /32 have no such reserved addresses).
    bool is_host(Ipv4 addr) const;
    std::string str() const;  // "10.10.12.0/26"

    friend bool operator==(const Subnet&, const Subnet&) = default;
};

}  // namespace aplspawn
