#include "config/yaml_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace aplspawn::config {
namespace {

int line_of_node(const YAML::Node& node) {
    YAML::Mark m = node.Mark();
    return m.is_null() ? 0 : m.line + 1;
}

const char* kind_name(const YAML::Node& node) {
    switch (node.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return "a scalar";
    case YAML::NodeType::Null: return "empty";
    default: return "undefined";
    }
}

// Edit distance, for "did you mean" on unknown keys.
size_t distance(std::string_view a, std::string_view b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t cost = (std::tolower(a[i - 1]) == std::tolower(b[j - 1])) ? 0 : 1;
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
        }
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

std::string suggestion(std::string_view key, const std::vector<std::string>& candidates) {
    std::string best;
    size_t best_d = 3;  // suggest only close matches
    for (const auto& c : candidates) {
        size_t d = distance(key, c);
        if (d < best_d) {
            best_d = d;
            best = c;
        }
    }
    return best.empty() ? std::string() : fmt::format(" (did you mean '{}'?)", best);
}

}  // namespace

std::string quote(std::string_view value) {
    std::string out = "'";
    size_t n = 0;
    for (char c : value) {
        if (++n > 80) {
            out += "...";
            break;
        }
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f)
            out += fmt::format("\\x{:02x}", u);
        else
            out += c;
    }
    out += "'";
    return out;
}

YamlReader::YamlReader(std::filesystem::path file, std::string display_name)
    : file_(std::move(file)), display_(std::move(display_name)) {}

void YamlReader::load(std::string_view text) {
    try {
        root_ = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
        int line = e.mark.is_null() ? 0 : e.mark.line + 1;
        fail_at(line, "", fmt::format("YAML syntax error: {}", e.msg));
    }
    if (root_.IsNull() || !root_.IsDefined())
        throw Error::usage(fmt::format("{}: empty config file (expected the sections bridge, ipt, "
                                       "path, image, cntVariables, cntCommon)",
                                       display_));
    if (!root_.IsMap())
        fail_at(line_of_node(root_), "",
                fmt::format("the top level must be a mapping of sections, not {}",
                            kind_name(root_)));
    for (auto it = root_.begin(); it != root_.end(); ++it) {
        const std::string name = it->first.Scalar();
        lines_.emplace(name, line_of_node(it->first));
        if (it->second.IsMap()) {
            for (auto kt = it->second.begin(); kt != it->second.end(); ++kt)
                lines_.emplace(name + "." + kt->first.Scalar(), line_of_node(kt->first));
        }
    }
}

int YamlReader::line_of(const std::string& key) const {
    if (auto it = lines_.find(key); it != lines_.end()) return it->second;
    auto dot = key.find('.');
    if (dot != std::string::npos)
        if (auto it = lines_.find(key.substr(0, dot)); it != lines_.end()) return it->second;
    return 0;
}

void YamlReader::fail(const std::string& key, const std::string& message) const {
    fail_at(line_of(key), key, message);
}

void YamlReader::fail_at(int line, const std::string& key, const std::string& message) const {
    std::string where = line > 0 ? fmt::format("{}:{}", display_, line) : display_;
    if (key.empty()) throw Error::usage(fmt::format("{}: {}", where, message));
    throw Error::usage(fmt::format("{}: {}: {}", where, key, message));
}

std::optional<YAML::Node> YamlReader::section(const std::string& name, bool required) {
    YAML::Node node = root_[name];
    if (!node.IsDefined() || node.IsNull()) {
        if (required) fail_at(node.IsDefined() ? line_of(name) : 0, name, "missing section");
        return std::nullopt;
    }
    if (!node.IsMap())
        fail(name, fmt::format("must be a mapping of keys, not {}", kind_name(node)));
    return node;
}

std::optional<YAML::Node> YamlReader::value(const std::string& section_name,
                                            const std::string& key, bool required) {
    const std::string full = section_name + "." + key;
    auto sec = section(section_name, required);
    if (!sec) return std::nullopt;
    YAML::Node node = (*sec)[key];
    if (!node.IsDefined()) {
        if (required) fail(full, "missing key");
        return std::nullopt;
    }
    if (node.IsNull()) {
        if (required) fail(full, "missing value");
        return std::nullopt;
    }
    return node;
}

std::optional<std::string> YamlReader::string(const std::string& section_name,
                                              const std::string& key, bool required) {
    auto node = value(section_name, key, required);
    if (!node) return std::nullopt;
    if (!node->IsScalar())
        fail(section_name + "." + key, fmt::format("must be a string, not {}", kind_name(*node)));
    return node->Scalar();
}

std::optional<long long> YamlReader::integer(const std::string& section_name,
                                             const std::string& key, bool required) {
    auto node = value(section_name, key, required);
    if (!node) return std::nullopt;
    const std::string full = section_name + "." + key;
    if (!node->IsScalar())
        fail(full, fmt::format("must be an integer, not {}", kind_name(*node)));
    const std::string& s = node->Scalar();
    long long v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty())
        fail(full, fmt::format("must be an integer, got {}", quote(s)));
    return v;
}

std::optional<bool> YamlReader::boolean(const std::string& section_name, const std::string& key,
                                        bool required) {
    auto node = value(section_name, key, required);
    if (!node) return std::nullopt;
    const std::string full = section_name + "." + key;
    bool b = false;
    if (!node->IsScalar() || !YAML::convert<bool>::decode(*node, b))
        fail(full, fmt::format("must be true or false, got {}",
                               node->IsScalar() ? quote(node->Scalar()) : kind_name(*node)));
    return b;
}

std::optional<std::vector<std::string>> YamlReader::string_list(const std::string& section_name,
                                                                const std::string& key,
                                                                bool required) {
    auto node = value(section_name, key, required);
    if (!node) return std::nullopt;
    const std::string full = section_name + "." + key;
    if (!node->IsSequence())
        fail(full, fmt::format("must be a list, not {}",
                               node->IsScalar() ? quote(node->Scalar()) : kind_name(*node)));
    std::vector<std::string> out;
    for (const auto& item : *node) {
        if (!item.IsScalar())
            fail(full, fmt::format("list items must be strings, not {}", kind_name(item)));
        out.push_back(item.Scalar());
    }
    return out;
}

void YamlReader::refuse_unknown_keys(
    const std::map<std::string, std::vector<std::string>>& known) const {
    std::vector<std::string> sections;
    for (const auto& [name, keys] : known) sections.push_back(name);
    for (auto it = root_.begin(); it != root_.end(); ++it) {
        const std::string name = it->first.Scalar();
        auto k = known.find(name);
        if (k == known.end())
            fail_at(line_of_node(it->first), name,
                    "unknown section" + suggestion(name, sections));
        if (!it->second.IsMap()) continue;
        for (auto kt = it->second.begin(); kt != it->second.end(); ++kt) {
            const std::string key = kt->first.Scalar();
            if (std::find(k->second.begin(), k->second.end(), key) == k->second.end())
                fail_at(line_of_node(kt->first), name + "." + key,
                        "unknown key" + suggestion(key, k->second));
        }
    }
}

}  // namespace aplspawn::config
