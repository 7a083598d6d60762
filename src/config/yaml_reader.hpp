// A thin reader over a yaml-cpp tree that knows where every key is (file:line), which keys it may
// hold (so unknown keys are refused), and how to say what is wrong with a value.
//
// Values are addressed by dotted paths from the top: "cntCommon.amount", "groups.web.image.os".
// Path segments are mapping keys; list items are "PATH[N]" in lines() (for messages only).
#pragma once

#include "aplspawn/error.hpp"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aplspawn::config {

class YamlReader {
public:
    YamlReader(std::filesystem::path file, std::string display_name);

    // Parses the text; syntax errors, an empty document and a top level that is not a mapping
    // are refused.
    void load(std::string_view text);

    const std::string& display_name() const { return display_; }
    const std::map<std::string, int, std::less<>>& lines() const { return lines_; }

    // The node at a path; nullopt when it (or a parent) is absent. A null value is returned as
    // a null node.
    std::optional<YAML::Node> node(std::string_view path) const;
    // The keys of the mapping at path, in file order (empty when absent or not a mapping).
    std::vector<std::string> keys(std::string_view path) const;
    bool has(std::string_view path) const;

    // A mapping (a section, a group). Absent or null: std::nullopt (or an error if required).
    std::optional<YAML::Node> mapping(std::string_view path, bool required) const;

    // Typed getters. Absent or null: std::nullopt, or an error if required.
    std::optional<std::string> string(std::string_view path, bool required) const;
    std::optional<long long> integer(std::string_view path, bool required) const;
    std::optional<bool> boolean(std::string_view path, bool required) const;
    std::optional<std::vector<std::string>> string_list(std::string_view path, bool required) const;

    // Which keys a mapping may hold, by path pattern: "" is the top level (its sections),
    // "groups.*" every group, "groups.*.image" every group's image. Mappings whose pattern is not
    // listed are not checked (free-form, like a group's vars).
    using Schema = std::map<std::string, std::vector<std::string>, std::less<>>;
    // Refuses keys the schema does not list: "FILE:LINE: unknown key 'cntCommon.amout' (did
    // you mean 'amount'?)". An unknown top-level key is an "unknown section".
    void refuse_unknown_keys(const Schema& schema) const;

    // "FILE:LINE: key: message"; line is that of the key when it was seen, else the nearest
    // parent's that was.
    [[noreturn]] void fail(std::string_view key, const std::string& message) const;
    int line_of(std::string_view key) const;
    // "FILE:LINE" of a key (the file alone when its line is unknown), for "also at ..." notes.
    std::string place(std::string_view key) const;

private:
    std::optional<YAML::Node> value(std::string_view path, bool required) const;
    [[noreturn]] void fail_at(int line, std::string_view key, const std::string& message) const;
    void record_lines(const YAML::Node& node, const std::string& path);
    void check_keys(const YAML::Node& node, const std::string& path, const std::string& pattern,
                    const Schema& schema) const;

    std::filesystem::path file_;
    std::string display_;
    YAML::Node root_;
    std::map<std::string, int, std::less<>> lines_;  // dotted path -> 1-based line of its key
};

// 'value' in quotes, control characters escaped, long values cut: for error messages.
std::string quote(std::string_view value);

// The segments of a dotted path ("a.b.c" -> a, b, c).
std::vector<std::string> split_path(std::string_view path);

}  // namespace aplspawn::config
