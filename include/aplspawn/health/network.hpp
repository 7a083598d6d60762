// status, network part: the original's host checks, in its order, one CheckResult each:
//   bridge.exists   "Checking if bridge NAME exists"
//   bridge.address  "Checking if bridge has IP A/P assigned"
//   bridge.up       "Checking if bridge NAME is up"        (administratively: IFF_UP)
//   then for each network of the networks section, the same three for its bridge:
//   network.NAME.exists   "Checking if bridge B of network NAME exists"
//   network.NAME.address  "Checking if bridge B of network NAME has IP A/P assigned"
//   network.NAME.up       "Checking if bridge B of network NAME is up"
//   forwarding      "Checking if traffic forwarding is enabled /proc/sys/net/ipv4/ip_forward"
//   nat             "Checking NAT table aplspawn_CHAIN"    (present, with exactly netup's rules,
//                                                           isolation included)
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/health/check.hpp"

namespace aplspawn::health {

// Never throws: a check that cannot be made fails with the reason in its detail.
Report network_checks(const config::Config& c);

}  // namespace aplspawn::health
