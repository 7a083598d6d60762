// groups.NAME.resources (and cntCommon.resources, what groups inherit): memory, cpus and tasks,
// read and checked where they are written (docs/resources.md).
#pragma once

#include "aplspawn/config.hpp"
#include "config/yaml_reader.hpp"

namespace aplspawn::config {

// The resources mapping at `key` ("groups.db.resources"): each key optional. Throws Error (exit 2)
// "FILE:LINE: KEY.memory: ..." naming the value. host_cpus: the CPUs a list may name and a count
// may not exceed.
Resources read_resources(const YamlReader& r, const std::string& key, const std::vector<int>& host_cpus);

// "512M" -> bytes (K, M, G: binary units, upper or lower case); nullopt when not that form.
std::optional<std::uint64_t> parse_memory_size(std::string_view text);

}  // namespace aplspawn::config
