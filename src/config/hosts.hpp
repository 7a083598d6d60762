// hosts and fabric (new): where the fleet's groups run when it spans several machines, read and
// checked with file:line messages like every other section (docs/multi-host.md).
#pragma once

#include "aplspawn/config.hpp"
#include "config/yaml_reader.hpp"

namespace aplspawn::config {

// The hosts and fabric sections into c.hosts and c.fabric (after bridge and networks are read).
void read_hosts(const YamlReader& r, Config& c);

// Puts group g on its host: refused when it is on no host or on two; its containers' default
// gateway becomes the host's address on the bridge. Nothing without hosts.
void place_group(const YamlReader& r, const Config& c, Group& g);

// Each host's derived addresses are host addresses of their
// subnets (before the groups' own checks, which assume them).
void check_hosts(const Config& c, const YamlReader& r);

// No container has a host's derived address (once c.fleet is made).
void check_host_addresses(const Config& c, const YamlReader& r);

}  // namespace aplspawn::config
