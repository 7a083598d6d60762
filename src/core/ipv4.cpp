#include "aplspawn/ipv4.hpp"

#include <arpa/inet.h>

#include <fmt/format.h>

namespace aplspawn {

std::optional<Ipv4> Ipv4::parse(std::string_view text) {
    std::uint32_t value = 0;
    int octets = 0;
    size_t i = 0;
    while (octets < 4) {
        if (i >= text.size() || text[i] < '0' || text[i] > '9') return std::nullopt;
        size_t start = i;
        unsigned octet = 0;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
            octet = octet * 10 + static_cast<unsigned>(text[i] - '0');
            if (octet > 255 || i - start >= 3) return std::nullopt;
            ++i;
        }
        if (i - start > 1 && text[start] == '0') return std::nullopt;
        value = (value << 8) | octet;
        ++octets;
        if (octets < 4) {
            if (i >= text.size() || text[i] != '.') return std::nullopt;
            ++i;
        }
    }
    if (i != text.size()) return std::nullopt;
    return Ipv4{value};
}

std::string Ipv4::str() const {
    return fmt::format("{}.{}.{}.{}", value >> 24, (value >> 16) & 0xffu, (value >> 8) & 0xffu,
                       value & 0xffu);
}

std::uint32_t Ipv4::network_order() const { return htonl(value); }

Subnet Subnet::of(Ipv4 addr, int prefix) {
    Subnet s;
    s.prefix = prefix;
    s.network = Ipv4{addr.value & s.mask()};
    return s;
}

std::uint32_t Subnet::mask() const {
    if (prefix <= 0) return 0;
    if (prefix >= 32) return 0xffffffffu;
    return ~((1u << (32 - prefix)) - 1u);
}

Ipv4 Subnet::broadcast() const { return Ipv4{network.value | ~mask()}; }

bool Subnet::contains(Ipv4 addr) const { return (addr.value & mask()) == network.value; }

bool Subnet::is_host(Ipv4 addr) const {
    if (!contains(addr)) return false;
    if (prefix >= 31) return true;
    return addr != network && addr != broadcast();
}

std::string Subnet::str() const { return fmt::format("{}/{}", network.str(), prefix); }

}  // namespace aplspawn
