// A YAML value as JSON, its plain scalars typed the way Ansible's own YAML loader (PyYAML, YAML
// 1.1) types them, so group vars mean in aplspawn's inventory what they would mean in a
// group_vars file: 8080 is an int, yes/no/true/false are booleans, ~ and null are null, 1.5 is a
// float, anything quoted is a string. Mapping keys are strings.
#pragma once

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

namespace aplspawn::config {

nlohmann::ordered_json yaml_to_json(const YAML::Node& node);

// The JSON value of one plain (unquoted) YAML 1.1 scalar.
nlohmann::ordered_json plain_scalar(const std::string& text);

}  // namespace aplspawn::config
