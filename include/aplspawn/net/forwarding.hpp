// net.ipv4.ip_forward of the calling thread's network namespace (/proc/sys/net/ipv4/ip_forward).
#pragma once

#include "aplspawn/error.hpp"

#include <string_view>

namespace aplspawn::net {

inline constexpr std::string_view kIpForwardPath = "/proc/sys/net/ipv4/ip_forward";

// The current value: 0 or 1. Throws Error "read /proc/sys/net/ipv4/ip_forward: ...".
int ip_forward();

// Writes value (0 or 1); Change::unchanged when it already was.
Change set_ip_forward(int value);

}  // namespace aplspawn::net
