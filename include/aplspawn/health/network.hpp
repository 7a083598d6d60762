// status, network part: the original's host checks, in its order, one CheckResult each:
//   bridge.exists   "Checking if bridge NAME exists"
//   bridge.address  "Checking if bridge has IP A/P assigned"
//   bridge.up       "Checking if bridge NAME is up"        (administratively: IFF_UP)
//   forwarding      "Checking if traffic forwarding is enabled /proc/sys/net/ipv4/ip_forward"
//   nat             "Checking NAT table aplspawn_CHAIN"    (present, with exactly netup's rules)
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/health/check.hpp"

namespace aplspawn::health {

// Never throws: a check that cannot be made fails with the reason in its detail.
Report network_checks(const config::Config& c);

}  // namespace aplspawn::health
