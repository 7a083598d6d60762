// Cross-key rules of the configuration, checked once after every key was read.
#pragma once

#include "aplspawn/config.hpp"
#include "config/yaml_reader.hpp"

namespace aplspawn::config {

// Checks the rules that involve several keys and fills c.fleet. Throws Error (exit 2).
void validate(Config& c, const YamlReader& reader);

}  // namespace aplspawn::config
