// A container's static address, set from the host inside the container's network namespace over
// rtnetlink: no tools needed in the guest.
#pragma once

#include "aplspawn/error.hpp"
#include "aplspawn/ipv4.hpp"

#include <sys/types.h>

#include <string>

namespace aplspawn::net {

// In the network namespace of process `pid` (/proc/PID/ns/net): ensures `ifname` has
// address/prefix, is up, and the default route goes via gateway. Idempotent: returns
// Change::unchanged when all was already so. Throws Error naming the step.
Change configure_container_address(pid_t pid, const std::string& ifname, Ipv4 address, int prefix,
                                   Ipv4 gateway);

}  // namespace aplspawn::net
