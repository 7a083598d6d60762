// ICMP echo from the host, without the `ping` program: an unprivileged ICMP datagram socket
// (SOCK_DGRAM/IPPROTO_ICMP, allowed by net.ipv4.ping_group_range) or, when that is not allowed,
// a raw socket (CAP_NET_RAW). Every wait is bounded. Safe to call from many threads at once:
// each call has its own socket and echo identifier and accepts only replies to its own requests.
#pragma once

#include "aplspawn/ipv4.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace aplspawn::net {

struct EchoResult {
    bool replied = false;
    std::chrono::microseconds rtt{0};  // of the first reply
    int sent = 0;                      // requests sent before the reply (or the timeout)
    std::string error;                 // why none could be sent ("" when it simply got no reply)
    bool raw_socket = false;           // a raw socket was used (no ICMP datagram sockets allowed)
    // "reply in 0.2 ms", "no reply to 3 echo requests within 1000 ms", "sendto: ..."
    std::string describe(std::chrono::milliseconds timeout) const;
};

// Sends up to `attempts` echo requests to `to`, spread evenly over `timeout`, and returns at the
// first matching echo reply, or when timeout has passed.
EchoResult echo(Ipv4 to, std::chrono::milliseconds timeout, int attempts = 3);

// --- the pure part, for tests ---

// The Internet checksum (RFC 1071) of data, as stored in an ICMP header.
std::uint16_t internet_checksum(const std::uint8_t* data, std::size_t size);

// An echo request: type 8, code 0, checksum, identifier, sequence number, payload.
std::vector<std::uint8_t> echo_request(std::uint16_t id, std::uint16_t sequence,
                                       const std::vector<std::uint8_t>& payload);

struct EchoReply {
    std::uint16_t id = 0;
    std::uint16_t sequence = 0;
};
// An echo reply in a received ICMP message (`with_ip_header`: raw sockets deliver the IPv4
// header first); false for anything else or a message too short or with a bad checksum.
bool parse_echo_reply(const std::uint8_t* data, std::size_t size, bool with_ip_header,
                      EchoReply& reply);

}  // namespace aplspawn::net
