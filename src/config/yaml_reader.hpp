// A thin reader over a yaml-cpp tree that knows where every key is (file:line), which keys it has
// read (so unknown keys are refused), and how to say what is wrong with a value.
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

    // A section (top-level mapping). Absent: std::nullopt (or an error when required).
    std::optional<YAML::Node> section(const std::string& name, bool required);

    // Typed getters for "section.key". Absent or null: std::nullopt, or an error if required.
    std::optional<std::string> string(const std::string& section, const std::string& key,
                                      bool required);
    std::optional<long long> integer(const std::string& section, const std::string& key,
                                     bool required);
    std::optional<bool> boolean(const std::string& section, const std::string& key,
                                bool required);
    std::optional<std::vector<std::string>> string_list(const std::string& section,
                                                        const std::string& key, bool required);

    // Refuses keys that no getter asked for: "FILE:LINE: unknown key 'cntCommon.amout'".
    void refuse_unknown_keys(const std::map<std::string, std::vector<std::string>>& known) const;

    // "FILE:LINE: key: message"; line is that of the key when it was seen, else its section's.
    [[noreturn]] void fail(const std::string& key, const std::string& message) const;
    int line_of(const std::string& key) const;

private:
    std::optional<YAML::Node> value(const std::string& section, const std::string& key,
                                    bool required);
    [[noreturn]] void fail_at(int line, const std::string& key, const std::string& message) const;

    std::filesystem::path file_;
    std::string display_;
    YAML::Node root_;
    std::map<std::string, int, std::less<>> lines_;  // "section.key" / "section" -> 1-based line
};

// 'value' in quotes, control characters escaped, long values cut: for error messages.
std::string quote(std::string_view value);

}  // namespace aplspawn::config
