// The inventory rendered for Ansible: INI (the original's format, the default), YAML and JSON
// (Ansible's yaml inventory plugin reads both), and the dynamic inventory protocol (`--list`,
// `--host NAME`, with _meta.hostvars so Ansible never calls --host per host). Every format is
// read back by ansible-inventory in the tests.
#pragma once

#include "aplspawn/inventory/inventory.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace aplspawn::inventory {

enum class Format { ini, yaml, json };

// "ini" | "yaml" | "json"; throws Error::usage for anything else.
Format parse_format(std::string_view name);

// [aplspawned]
// aplspawn10 ansible_host=10.10.12.10 ansible_user=test ... ansible_ssh_common_args='-o ...'
// With groups: [aplspawned:children] naming them, then [GROUP] with its hosts and [GROUP:vars]
// with its vars as Python literals (Ansible reads them with ast.literal_eval).
std::string to_ini(const Inventory& inv);

// all: {children: {aplspawned: {hosts: {NAME: {ansible_host: ..., ...}}}}} (with groups:
// aplspawned: {children: {GROUP: {hosts: ..., vars: ...}}}), every string double-quoted so that
// no user or path is read as a number or a boolean; vars keep their types.
std::string to_yaml(const Inventory& inv);

// The same tree as to_yaml, as JSON.
nlohmann::ordered_json to_json(const Inventory& inv);

// Text in the given format, ending with a newline.
std::string render(const Inventory& inv, Format format);

// Dynamic inventory `--list`:
// {"_meta": {"hostvars": {NAME: {...}}}, "all": {"children": ["aplspawned"]},
//  "aplspawned": {"hosts": [NAME, ...]}}
// With groups: "aplspawned": {"children": [GROUP, ...]}, GROUP: {"hosts": [...], "vars": {...}}.
nlohmann::ordered_json dynamic_list(const Inventory& inv);

// Dynamic inventory `--host NAME`: that host's variables; nullopt when there is no such host.
std::optional<nlohmann::ordered_json> dynamic_host(const Inventory& inv, std::string_view name);

// A JSON value as a Python literal (str, int, float, bool, None, list, dict), which Ansible's INI
// inventory reads back with ast.literal_eval: group vars keep their types in INI too.
std::string python_literal(const nlohmann::ordered_json& value);

// POSIX shell quoting as Python's shlex.quote does it (Ansible splits INI host lines and
// ansible_ssh_common_args with shlex): the word unchanged when it has only safe characters,
// else in single quotes with ' written as '"'"'.
std::string shell_quote(std::string_view word);

}  // namespace aplspawn::inventory
