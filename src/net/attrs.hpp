// Reading rtnetlink attributes (libmnl) into a table by type: shared by the parsers of links,
// addresses and forwarding entries. Internal to src/net.
#pragma once

#include "aplspawn/ipv4.hpp"

#include <libmnl/libmnl.h>
#include <netinet/in.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace aplspawn::net {

// Attributes of one message (or nest), indexed by type; types above Max are ignored.
template <int Max>
struct Attrs {
    std::array<const nlattr*, Max + 1> at{};

    static int store(const nlattr* attr, void* data) {
        auto* self = static_cast<Attrs*>(data);
        int type = mnl_attr_get_type(attr);
        if (type >= 0 && type <= Max) self->at[static_cast<std::size_t>(type)] = attr;
        return MNL_CB_OK;
    }
    void parse(const nlmsghdr* nlh, std::size_t family_header_size) {
        mnl_attr_parse(nlh, static_cast<unsigned>(family_header_size), store, this);
    }
    void parse_nested(const nlattr* nest) { mnl_attr_parse_nested(nest, store, this); }
    const nlattr* operator[](int type) const { return at[static_cast<std::size_t>(type)]; }
};

inline Ipv4 attr_ipv4(const nlattr* attr) {
    std::uint32_t be = 0;
    if (mnl_attr_get_payload_len(attr) >= sizeof be) std::memcpy(&be, mnl_attr_get_payload(attr), sizeof be);
    return Ipv4{ntohl(be)};
}

}  // namespace aplspawn::net
